import { Injectable, type DynamicModule, type OnModuleInit } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { Module } from '@nestjs/core/injector/module';
import { QUEUE_MODULE_OPTIONS, RESOLVED_QUEUE_OPTIONS } from '../queue.constants';
import { DuplicateQueueModuleError } from '../errors/duplicate-queue-module.error';
import type { ResolvedQueueOptions } from '../queue-options.resolver';

/**
 * Fails the boot when the app holds more than one instance of QueueModule (two `forRoot()` calls
 * with different options: Nest merges identical ones). Two instances would both be global, export
 * the same token, and both run every processor; until several are a designed feature, refuse.
 * Listed first among the module's providers, so it runs before the database is touched.
 */
@Injectable()
export class SingleQueueModuleCheck implements OnModuleInit {
  constructor(private readonly modules: ModulesContainer) {}

  onModuleInit(): void {
    const all = [...this.modules.values()];
    const own = all.find((m) => m.providers.get(SingleQueueModuleCheck)?.instance === this);
    const instances = all.filter((m) => m.metatype === own?.metatype);
    if (instances.length > 1) throw new DuplicateQueueModuleError(instances.map((m) => describe(m, all)));
  }
}

/** The metadata key `@Module()` stores its imports under (Nest's MODULE_METADATA.IMPORTS, not imported
 * from a deep path that Nest 12's package exports may not expose). */
const MODULE_IMPORTS_METADATA = 'imports';

/** Where a QueueModule instance was imported (as declared in `@Module({ imports })`), and its table. */
function describe(queueModule: Module, all: Module[]): string {
  // NOTE: a global module is linked into every module's imports, so those say nothing; the declared
  // imports do. A declared `forRoot()`/`forRootAsync()` is recognised by its options provider, the
  // very value (or factory) this instance was built from.
  const options = queueModule.providers.get(QUEUE_MODULE_OPTIONS);
  const isThisOne = (entry: unknown) => {
    const dynamic = entry as DynamicModule | undefined;
    if (dynamic?.module !== queueModule.metatype) return false;
    return (dynamic.providers ?? []).some((p) => {
      const provider = p as { provide?: unknown; useValue?: unknown; useFactory?: unknown };
      return provider.provide === QUEUE_MODULE_OPTIONS && ((provider.useValue !== undefined && provider.useValue === options?.instance) || (provider.useFactory !== undefined && provider.useFactory === options?.metatype));
    });
  };
  const importers = all.filter((m) => ((Reflect.getMetadata(MODULE_IMPORTS_METADATA, m.metatype) ?? []) as unknown[]).some(isThisOne)).map((m) => m.metatype.name);
  const resolved = queueModule.providers.get(RESOLVED_QUEUE_OPTIONS)?.instance as ResolvedQueueOptions | undefined;
  return `imported by ${importers.join(', ') || 'a dynamic module'} (table ${resolved?.naming.qualified ?? '?'})`;
}
