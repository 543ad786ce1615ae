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
  /** Prefix of index and constraint names. */
  prefix: string;
}

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
  const prefix = table.length <= 40 ? table : table.slice(0, 40);
  return { schema, table, qualified: `"${schema}"."${table}"`, channel, prefix };
}
