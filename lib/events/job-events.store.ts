import { Injectable } from '@nestjs/common';
import { QueueDatabase } from '../database/queue-database';
import { JobEventsRepository } from '../database/job-events.repository';

/** Gives the events, progress and log features their repository, made once the database is ready. */
@Injectable()
export class JobEventsStore {
  private repository?: JobEventsRepository;

  constructor(private readonly database: QueueDatabase) {}

  async get(): Promise<JobEventsRepository> {
    const jobs = await this.database.getRepository();
    this.repository ??= new JobEventsRepository(jobs);
    return this.repository;
  }
}
