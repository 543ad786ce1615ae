import { createHash } from 'node:crypto';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error';
import { DEFAULT_SCHEMA, DEFAULT_TABLE_NAME } from '../queue.constants';

/**
 * Where the job table lives, with every SQL spelling derived once. Names are validated against a
 * strict identifier pattern and then quoted, so no user input is ever concatenated into SQL raw.
 */
export interface TableNaming {
  schema: string;
  table: string;
  /** `"schema"."table"`, safe to splice into SQL. */
  qualified: string;
  /** The LISTEN/NOTIFY channel of this table (at most 63 bytes, PostgreSQL's identifier limit). */
  channel: string;
  /** Prefix of index and constraint names: unique per table within its schema, at most 40 characters. */
  prefix: string;
  /**
   * The prefix releases before schema version 3 used for names longer than 40 characters: the first
   * 40 characters alone, which two such tables could share. Schema step 3 renames what carries it.
   */
  legacyPrefix?: string;
  /** `"schema"."<table>_queues"`: the queue registry (one row per queue: pause, limits, counts). */
  queuesQualified: string;
  /** `"schema"."<table>_schedules"`: cron schedules, declared in code or at runtime (schema step 5). */
  schedulesQualified: string;
  /** `"schema"."<table>_deps"`: the dependencies of blocked jobs on other jobs (schema step 5). */
  dependenciesQualified: string;
  /** `"schema"."<table>_logs"`: the entries of `job.log()`, kept off the hot job row (schema step 5). */
  logsQualified: string;
  /** `"schema"."<table>_workers"`: the live worker processes (schema step 5). */
  workersQualified: string;
  /** `"schema"."<table>_stats"`: the per-minute rollups of outcomes and timings (schema step 5). */
  statsQualified: string;
  /** `"schema"."<table>_groups"`: per (queue, group) rate-limit state of the limited claim (schema step 5). */
  groupsQualified: string;
  /** `"schema"."<table>_permits"`: per (queue, worker) its share of a global concurrency limit (schema step 5). */
  permitsQualified: string;
}

/** Longest prefix: the longest suffix (`_claim_hash_idx`) still fits PostgreSQL's 63-byte names. */
const MAX_PREFIX_LENGTH = 40;

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export function createTableNaming(schema: string = DEFAULT_SCHEMA, table: string = DEFAULT_TABLE_NAME): TableNaming {
  for (const [option, value] of [['schema', schema], ['tableName', table]] as const) {
    if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
      throw new InvalidModuleOptionsError(option, value, 'a lower-case SQL identifier: a-z, 0-9 and _, starting with a letter or _, at most 63 characters');
    }
  }
  const full = `${schema}.${table}`;
  // NOTE: pg_notify() rejects channel names of 64 bytes or more; long names get a stable digest.
  const channel = full.length <= 63 ? full : `pgq_${createHash('sha1').update(full).digest('hex')}`;
  const qualified = `"${schema}"."${table}"`;
  // NOTE: `<table>_<suffix>` while that fits in 63 characters; the unique prefix otherwise.
  const side = (suffix: string) => `"${schema}"."${table.length + suffix.length + 1 <= 63 ? table : createPrefix(table)}_${suffix}"`;
  const sideTables = {
    queuesQualified: side('queues'),
    schedulesQualified: side('schedules'),
    dependenciesQualified: side('deps'),
    logsQualified: side('logs'),
    workersQualified: side('workers'),
    statsQualified: side('stats'),
    groupsQualified: side('groups'),
    permitsQualified: side('permits'),
  };
  if (table.length <= MAX_PREFIX_LENGTH) return { schema, table, qualified, channel, prefix: table, ...sideTables };
  // NOTE: index names share the schema's namespace, so a prefix cut from a long table name must stay
  // unique: 31 characters of the name, then 8 of its digest (CREATE INDEX IF NOT EXISTS would
  // otherwise silently skip the second table's indexes).
  return { schema, table, qualified, channel, prefix: createPrefix(table), legacyPrefix: table.slice(0, MAX_PREFIX_LENGTH), ...sideTables };
}

function createPrefix(table: string): string {
  const digest = createHash('sha1').update(table).digest('hex').slice(0, 8);
  return `${table.slice(0, MAX_PREFIX_LENGTH - 9)}_${digest}`;
}
