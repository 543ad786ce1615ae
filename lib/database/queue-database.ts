import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { JobRepository } from './job.repository';
import { QueueRegistryRepository } from './queue-registry.repository';
import { FlowRepository } from './flow.repository';
import { RESOLVED_QUEUE_OPTIONS } from '../queue.constants';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error';
import { QueueSchemaOutdatedError } from '../errors/queue-schema-outdated.error';
import { LATEST_SCHEMA_VERSION } from './migrations/job-table.ddl';
import type { ResolvedQueueOptions } from '../queue-options.resolver';

/**
 * Owns the {@link JobRepository}. The DataSource is looked up in `onModuleInit`, once every provider
 * (including `@nestjs/typeorm`'s async DataSource factory) exists, and the table is migrated there,
 * before any worker starts in `onApplicationBootstrap`.
 */
@Injectable()
export class QueueDatabase implements OnModuleInit {
  private jobs?: JobRepository;
  private ready?: Promise<JobRepository>;
  private registry?: QueueRegistryRepository;
  private flows?: FlowRepository;

  constructor(
    @Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions,
    private readonly moduleRef: ModuleRef,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.getRepository();
  }

  /** The repository, initialising on first use (a provider's own onModuleInit may enqueue early). */
  getRepository(): Promise<JobRepository> {
    this.ready ??= this.initialise().catch((error) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /** The queue registry's repository (pause, resume, the list of queues). */
  async getRegistry(): Promise<QueueRegistryRepository> {
    const jobs = await this.getRepository();
    this.registry ??= new QueueRegistryRepository(jobs);
    return this.registry;
  }

  /** Flows and dependencies (addFlow, dependsOn, getChildren). */
  async getFlows(): Promise<FlowRepository> {
    const jobs = await this.getRepository();
    this.flows ??= new FlowRepository(jobs);
    return this.flows;
  }

  /** The repository once initialised; for the worker, which starts after init. */
  get repository(): JobRepository {
    if (!this.jobs) throw new Error('QueueDatabase used before onModuleInit');
    return this.jobs;
  }

  private async initialise(): Promise<JobRepository> {
    const { queryTimeoutMs, preparedStatements, tracing } = this.options;
    const repository = new JobRepository(this.resolveDataSource(), this.options.naming, { queryTimeoutMs, preparedStatements, traceContext: tracing });
    if (this.options.migrationsRun) {
      await repository.migrate();
    } else {
      // NOTE: the app runs the migrations itself; a step it has not run would make statements fail
      // one by one at run time, so it is caught here, at boot.
      const version = await repository.schemaVersion();
      if (version < LATEST_SCHEMA_VERSION) throw new QueueSchemaOutdatedError(this.options.naming.qualified, version, LATEST_SCHEMA_VERSION);
    }
    this.jobs = repository;
    return repository;
  }

  private resolveDataSource(): DataSource {
    const configured = this.options.dataSource;
    if (configured instanceof DataSource || (typeof configured === 'object' && configured !== null)) return configured;
    let dataSource: DataSource | undefined;
    try {
      dataSource = this.moduleRef.get<DataSource>(getDataSourceToken(configured), { strict: false });
    } catch {
      dataSource = undefined;
    }
    if (!dataSource) {
      throw new InvalidModuleOptionsError(
        'dataSource',
        configured ?? '(default)',
        configured
          ? `the name of a connection registered with TypeOrmModule.forRoot({ name: '${configured}', ... })`
          : 'a TypeORM DataSource: import TypeOrmModule.forRoot() in the app, or pass QueueModule.forRoot({ dataSource })',
      );
    }
    return dataSource;
  }
}
