import type { TableNaming } from '../table-naming';

/**
 * The statements of job events, progress and logs (schema step 5, flows part): progress writes,
 * the job log side table (`<table>_logs`), and the presence of global event listeners.
 *
 * NOTE: presence is a session-level shared advisory lock per event type (key 1: a hash of the
 * table, key 2: the type's code), held by the LISTEN connection of each process that listens
 * globally. PostgreSQL drops it with the session, so a process that dies stops being counted
 * without anyone cleaning up; writers read the set of types held from `pg_locks`.
 */
export function buildJobEventsStatements(n: TableNaming) {
  const Q = n.qualified;
  const L = n.logsQualified;
  return {
    /** Store progress $3 on job $1, fenced like an outcome: claim $2, still active, leased to worker $4. */
    progress: `UPDATE ${Q} SET progress = $3::jsonb WHERE id = $1 AND claims = $2 AND state = 'active' AND locked_by = $4 RETURNING id`,

    /**
     * Append log entries (job ids $1, times $2 in epoch ms, texts $3, cut flags $4, in order) to
     * jobs that still exist, and trim each job of $5 to its newest $6 older entries: the caller
     * sends at most the last 100 entries per job and `keep` = 100 minus that many, so no job holds
     * more than 100 once this commits.
     */
    appendLogs: `
      WITH cut AS (
        SELECT c.job_id, (SELECT k.id FROM ${L} AS k WHERE k.job_id = c.job_id ORDER BY k.id DESC OFFSET c.keep LIMIT 1) AS upto
        FROM unnest($5::bigint[], $6::int[]) AS c(job_id, keep)
      ), trimmed AS (
        DELETE FROM ${L} AS l USING cut WHERE l.job_id = cut.job_id AND l.id <= cut.upto
      )
      INSERT INTO ${L} (job_id, at, message, truncated)
      SELECT u.job_id, to_timestamp(u.at_ms / 1000.0), u.message, u.truncated
      FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::bool[]) WITH ORDINALITY AS u(job_id, at_ms, message, truncated, i)
      WHERE EXISTS (SELECT 1 FROM ${Q} AS j WHERE j.id = u.job_id)
      ORDER BY u.i`,

    /** The log of job $1, oldest first. */
    logs: `SELECT floor(date_part('epoch', at) * 1000 + 0.0005) AS at, message, truncated FROM ${L} WHERE job_id = $1 ORDER BY id`,

    /** Which event type codes some session listens to globally ($1: the presence key text). */
    listenedTypes: `
      SELECT COALESCE(array_agg(DISTINCT objid::int), '{}') AS codes FROM pg_locks
      WHERE locktype = 'advisory' AND objsubid = 2 AND classid = hashtext($1)::oid
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,

    /** Take / give back this session's presence for event type code $2. */
    listen: `SELECT pg_advisory_lock_shared(hashtext($1), $2)`,
    unlisten: `SELECT pg_advisory_unlock_shared(hashtext($1), $2)`,

    /** Tell writers that this session now listens to more event types (they re-read `listenedTypes`). */
    announce: `SELECT pg_notify('${n.channel}', '{"t":"listeners"}')`,

    /** Send the payloads $1 on the table's channel (one statement for a whole batch of events). */
    notify: `SELECT count(pg_notify('${n.channel}', p)) FROM unnest($1::text[]) AS p`,
  };
}

export type JobEventsStatements = ReturnType<typeof buildJobEventsStatements>;
