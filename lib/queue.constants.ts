/** Injection token of the resolved {@link QueueModuleOptions}. */
export const QUEUE_MODULE_OPTIONS = Symbol('nestjs-pg-queue:module-options');

/** Metadata key set by `@Processor()` on a class. */
export const PROCESSOR_METADATA = 'nestjs-pg-queue:processor';
/** Metadata key set by `@Handle()` on a method. */
export const HANDLE_METADATA = 'nestjs-pg-queue:handle';
/**
 * Metadata key set by `@Handle()` on the class that declares the method, so a `@Handle` in a class
 * without `@Processor` can be found at boot and reported instead of being silently ignored.
 */
export const HANDLE_CLASS_METADATA = 'nestjs-pg-queue:handle-class';

/** Metadata key set by `@Schedule()` on a method: its cron schedules. */
export const SCHEDULE_METADATA = 'nestjs-pg-queue:schedule';

/** The key `@Handle()` without a name registers: the catch-all handler of a queue. */
export const CATCH_ALL_HANDLER = '*';

export const DEFAULT_SCHEMA = 'public';
export const DEFAULT_TABLE_NAME = 'queue_jobs';

export const DEFAULT_CONCURRENCY = 1;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_BACKOFF = { type: 'exponential', delayMs: 1000, maxDelayMs: 3_600_000, jitter: 0.2 } as const;

export const DEFAULT_POLL_INTERVAL_MS = 1000;
export const DEFAULT_LOCK_DURATION_MS = 30_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
export const DEFAULT_UNKNOWN_JOB_GRACE_MS = 600_000;
/** How long a job claimed ahead may wait for a slot before the buffer is handed back (ms). */
export const DEFAULT_CLAIM_AHEAD_MAX_WAIT_MS = 250;
/** Default bound of every statement of the library, connection acquisition included (ms). */
export const DEFAULT_QUERY_TIMEOUT_MS = 5000;
/** Default `statement_timeout` of the job management API's queries and bulk batches (ms). */
export const DEFAULT_ADMIN_QUERY_TIMEOUT_MS = 3000;
/** Default size of the worker's own pool: a claim, both outcome statements, a heartbeat and a rescue at once. */
export const DEFAULT_WORKER_POOL_SIZE = 5;

/** Largest number of rows one `addBulk` statement inserts; bigger inputs are split into chunks. */
export const BULK_CHUNK_SIZE = 5000;
/**
 * Largest JSON text of one job's data (or one handler's result), in UTF-8 bytes: 32 MiB.
 * NOTE: jsonb refuses values over 256 MB of its binary form, which can be several times the text
 * (an array of small numbers: about 6 times), so this keeps any accepted value well clear of it.
 */
export const MAX_JSON_BYTES = 32 * 1024 * 1024;
/**
 * Largest total data of one insert statement (a group of concurrent `add()`s, or a chunk of an
 * `addBulk` by statements), in bytes of JSON text; a job bigger than that goes alone. The batch
 * travels as one jsonb value, so it is bounded like one job's data.
 */
export const MAX_BATCH_BYTES = MAX_JSON_BYTES;
/**
 * `addBulk` inputs of at least this many jobs (none of them given as a delay) go by COPY, in one
 * transaction whatever their size; smaller ones by a prepared INSERT, whose fixed cost is lower.
 */
export const COPY_MIN_ROWS = 64;
/**
 * Rows per COPY statement of a bulk insert. PostgreSQL writes a COPY's rows to the table when its
 * buffer fills (1,000 rows or 64 kB) or the COPY ends, so several smaller COPYs in one transaction
 * let the server insert one piece while this process prepares the next.
 */
export const COPY_PIECE_ROWS = 250;
/** The first piece is smaller: the server waits for it before it inserts anything. */
export const COPY_FIRST_PIECE_ROWS = 64;
/** Largest number of jobs one claim statement takes, whatever the free concurrency. */
export const MAX_CLAIM_BATCH = 1000;
/** Largest number of outcomes one write statement takes (the completer's group commit). */
export const MAX_OUTCOME_BATCH = 1000;
/**
 * Fewest attempts a queue may hold done with their outcome not yet written before it stops
 * refilling its slots, whatever its concurrency (see the poller's `settlingRoom`).
 */
export const MIN_SETTLING_ROOM = 128;

/** Longest unique key accepted. */
export const MAX_UNIQUE_KEY_LENGTH = 512;
/** Longest `group` job option accepted. */
export const MAX_GROUP_LENGTH = 255;
/** Longest queue or job name accepted. */
export const MAX_NAME_LENGTH = 128;
/** The latest run time accepted (the end of year 9999, UTC): later ones do not survive an ISO round trip to PostgreSQL. */
export const MAX_RUN_AT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** The earliest run time accepted: 0001-01-01T00:00:00Z (earlier years have no 4-digit ISO form). */
export const MIN_RUN_AT_MS = -62_135_596_800_000;
/** Largest value PostgreSQL `integer` columns hold. */
export const MAX_INT32 = 2_147_483_647;

/** Injection token of the validated options with defaults filled in. */
export const RESOLVED_QUEUE_OPTIONS = Symbol('nestjs-pg-queue:resolved-options');

/** Metadata of `@OnQueueEvent` on a method: its subscriptions. */
export const ON_QUEUE_EVENT_METADATA = 'nestjs-pg-queue:on-queue-event';
