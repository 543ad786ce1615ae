import type { TableNaming } from '../../table-naming';

/** The job states, with `blocked` (schema step 5): the state check constraint's list. */
export const JOB_STATES_CHECK = `"state" IN ('pending', 'active', 'completed', 'failed', 'cancelled', 'blocked')`;
const JOB_STATES_CHECK_BEFORE = `"state" IN ('pending', 'active', 'completed', 'failed', 'cancelled')`;

/** The trigger function that settles the dependents of a job whose state changed (see below). */
export function settleFunctionName(n: TableNaming): string {
  return `"${n.schema}"."${n.prefix}_settle_dependents"`;
}

/** The function through which the trigger tells what it did to a dependent (see below). */
function flowEventFunctionName(n: TableNaming): string {
  return `"${n.schema}"."${n.prefix}_flow_event"`;
}

/**
 * The transaction-local setting in which a session that asks for it (by setting it to `[`) finds
 * the flow trigger's events of its transaction, as JSON objects each followed by a comma.
 */
export const FLOW_LOG_SETTING = 'nestjs_pg_queue.flow_log';

/**
 * Flows and dependencies. A job that waits for others is `blocked`; `deps_pending` counts its
 * dependencies not yet settled, and `<table>_deps` holds one row per (dependent, dependency) with
 * whether that dependency is settled. A job some other job depends on has `has_dependents` set:
 * only its state changes fire the trigger that settles its dependents, in the same transaction as
 * the change, whichever statement made it (a completion, a failure, a rescue, a cancel, a retry,
 * a user's own SQL). Ordinary jobs leave all four columns NULL.
 *
 * NOTE: exactly once, whatever the concurrency: the trigger locks the dependent's row before it
 * reads or changes anything, marks the dependency row settled only while it was not (so no
 * dependency is ever counted twice, not even after a retry), and decrements the counter under that
 * lock; the statement that takes the counter to zero is the one that moves the job to pending.
 */
const flowsPart = {
  up: (n: TableNaming): string[] => {
    const Q = n.qualified;
    const D = n.dependenciesQualified;
    // NOTE: the schema version lives in the state check's comment (see writeSchemaVersion); the
    // migration writes it again after every step, so re-creating the constraint here loses nothing.
    return [
      `ALTER TABLE ${Q} ADD COLUMN IF NOT EXISTS "parent_id" bigint, ADD COLUMN IF NOT EXISTS "deps_pending" integer,
        ADD COLUMN IF NOT EXISTS "has_dependents" boolean, ADD COLUMN IF NOT EXISTS "on_child_failure" text`,
      `ALTER TABLE ${Q} DROP CONSTRAINT IF EXISTS "${n.prefix}_state_check"`,
      `ALTER TABLE ${Q} ADD CONSTRAINT "${n.prefix}_state_check" CHECK (${JOB_STATES_CHECK})`,
      // cancel() walks a flow down from its root; only flow children are in this index.
      `CREATE INDEX IF NOT EXISTS "${n.prefix}_parent_idx" ON ${Q} ("parent_id") WHERE "parent_id" IS NOT NULL`,
      `CREATE TABLE IF NOT EXISTS ${D} (
        "job_id" bigint NOT NULL,
        "depends_on" bigint NOT NULL,
        "settled" boolean NOT NULL DEFAULT false,
        PRIMARY KEY ("job_id", "depends_on")
      )`,
      `CREATE INDEX IF NOT EXISTS "${n.prefix}_deps_on_idx" ON ${D} ("depends_on")`,
      // NOTE: every event goes out as a notice at commit, naming the worker whose write caused it
      // (that worker tells its lifecycle hub); a session that logs the events (a producer's cancel()
      // or retry(), see FLOW_LOG_SETTING) reads them back and tells them itself, so its notices name
      // no worker and nothing is told twice.
      `CREATE OR REPLACE FUNCTION ${flowEventFunctionName(n)}(event text, job_id bigint, job_queue text, job_name text, actor text)
      RETURNS void LANGUAGE plpgsql AS $pgq$
      DECLARE
        log text := current_setting('${FLOW_LOG_SETTING}', true);
        logging boolean := COALESCE(log LIKE '[%', false);
      BEGIN
        IF logging THEN
          PERFORM set_config('${FLOW_LOG_SETTING}', log || json_build_object('e', event, 'id', job_id::text, 'q', job_queue, 'n', job_name)::text || ',', true);
        END IF;
        PERFORM pg_notify('${n.channel}', json_build_object('t', 'flow', 'e', event, 'id', job_id::text, 'q', job_queue, 'n', job_name,
          'w', CASE WHEN logging THEN NULL ELSE actor END)::text);
      END $pgq$`,
      `CREATE OR REPLACE FUNCTION ${settleFunctionName(n)}() RETURNS trigger LANGUAGE plpgsql AS $pgq$
      DECLARE
        dep record;
        parent record;
        culprit record;
        released boolean;
        -- The worker whose write this is (its lease is on the old row), or, for a dependent this
        -- trigger changed in turn (no lease), the worker that started it: it tells the lifecycle hub.
        actor text := COALESCE(OLD.locked_by, NULLIF(current_setting('nestjs_pg_queue.flow_actor', true), ''));
        finished boolean := NEW.state IN ('completed', 'failed', 'cancelled');
      BEGIN
        IF actor IS NOT NULL THEN
          PERFORM set_config('nestjs_pg_queue.flow_actor', actor, true);
        END IF;
        -- Dependents in id order, so two settlings of one dependency lock its dependents alike. (A
        -- batch that ends several dependencies may still deadlock with another: PostgreSQL aborts
        -- one, and the worker's completer writes it again.)
        FOR dep IN SELECT job_id FROM ${D} WHERE depends_on = NEW.id ORDER BY job_id LOOP
          SELECT id, queue, name, state, on_child_failure, last_error, attempts, run_at INTO parent FROM ${Q} WHERE id = dep.job_id FOR UPDATE;
          CONTINUE WHEN NOT FOUND;
          IF NEW.state = 'completed' OR (finished AND parent.on_child_failure = 'continue') THEN
            UPDATE ${D} SET settled = true WHERE job_id = parent.id AND depends_on = NEW.id AND NOT settled;
            CONTINUE WHEN NOT FOUND;
            UPDATE ${Q} SET deps_pending = deps_pending - 1,
              state = CASE WHEN state = 'blocked' AND deps_pending <= 1 THEN 'pending' ELSE state END
            WHERE id = parent.id
            RETURNING state = 'pending' AND parent.state = 'blocked' INTO released;
            IF released THEN
              PERFORM pg_notify('${n.channel}', json_build_object('t', 'job', 'q', parent.queue,
                'in', GREATEST(0, ceil(extract(epoch FROM parent.run_at - now()) * 1000)))::text);
              PERFORM ${flowEventFunctionName(n)}('unblocked', parent.id, parent.queue, parent.name, actor);
            END IF;
          ELSIF finished THEN
            -- onChildFailure 'fail': a dependency failed for good or was cancelled.
            IF parent.state = 'blocked' THEN
              UPDATE ${Q} SET state = 'failed', finished_at = now(),
                last_error = jsonb_build_object('name', 'JobDependencyFailedError',
                  'message', format('Dependency %s (queue "%s", name "%s") ended %s', NEW.id, NEW.queue, NEW.name, NEW.state),
                  'dependencyId', NEW.id::text, 'dependencyState', NEW.state, 'attempt', parent.attempts, 'at', now())
              WHERE id = parent.id;
              PERFORM ${flowEventFunctionName(n)}('failed', parent.id, parent.queue, parent.name, actor);
            END IF;
          ELSIF OLD.state IN ('failed', 'cancelled') AND parent.state = 'failed'
            AND parent.last_error->>'name' = 'JobDependencyFailedError' AND parent.last_error->>'dependencyId' = NEW.id::text THEN
            -- retry() of the dependency that failed this job: blocked again, unless another one
            -- failed meanwhile (then it names that one).
            SELECT j.id, j.queue, j.name, j.state INTO culprit FROM ${D} AS x JOIN ${Q} AS j ON j.id = x.depends_on
            WHERE x.job_id = parent.id AND NOT x.settled AND j.id <> NEW.id AND j.state IN ('failed', 'cancelled')
            ORDER BY j.id LIMIT 1;
            IF FOUND THEN
              UPDATE ${Q} SET last_error = last_error || jsonb_build_object(
                  'message', format('Dependency %s (queue "%s", name "%s") ended %s', culprit.id, culprit.queue, culprit.name, culprit.state),
                  'dependencyId', culprit.id::text, 'dependencyState', culprit.state, 'at', now())
              WHERE id = parent.id;
            ELSE
              UPDATE ${Q} SET state = 'blocked', finished_at = NULL WHERE id = parent.id;
              PERFORM ${flowEventFunctionName(n)}('blocked', parent.id, parent.queue, parent.name, actor);
            END IF;
          END IF;
        END LOOP;
        RETURN NULL;
      END $pgq$`,
      // NOTE: the WHEN clause is checked on the row itself, so an update of an ordinary job
      // (has_dependents NULL: the first test fails) queues nothing and runs no function; nor do the
      // moves that change nothing for dependents (a claim, a retry later, a rescue to pending), so a
      // dependency's claim never locks its dependents.
      `DROP TRIGGER IF EXISTS "${n.prefix}_settle_dependents" ON ${Q}`,
      `CREATE TRIGGER "${n.prefix}_settle_dependents" AFTER UPDATE OF "state" ON ${Q}
        FOR EACH ROW WHEN (NEW."has_dependents" IS TRUE AND OLD."state" IS DISTINCT FROM NEW."state"
          AND (NEW."state" IN ('completed', 'failed', 'cancelled') OR OLD."state" IN ('failed', 'cancelled')))
        EXECUTE FUNCTION ${settleFunctionName(n)}()`,
    ];
  },
  down: (n: TableNaming): string[] => {
    const Q = n.qualified;
    return [
      `DROP TRIGGER IF EXISTS "${n.prefix}_settle_dependents" ON ${Q}`,
      `DROP FUNCTION IF EXISTS ${settleFunctionName(n)}()`,
      `DROP FUNCTION IF EXISTS ${flowEventFunctionName(n)}(text, bigint, text, text, text)`,
      `DROP TABLE IF EXISTS ${n.dependenciesQualified}`,
      `DROP INDEX IF EXISTS "${n.schema}"."${n.prefix}_parent_idx"`,
      // Blocked jobs cannot exist before this step: they are failed, naming why.
      `UPDATE ${Q} SET state = 'failed', finished_at = now(), last_error = jsonb_build_object('name', 'SchemaDowngradeError',
        'message', 'blocked when the flows schema was removed', 'attempt', attempts, 'at', now()) WHERE state = 'blocked'`,
      `ALTER TABLE ${Q} DROP CONSTRAINT IF EXISTS "${n.prefix}_state_check"`,
      `ALTER TABLE ${Q} ADD CONSTRAINT "${n.prefix}_state_check" CHECK (${JOB_STATES_CHECK_BEFORE})`,
      `ALTER TABLE ${Q} DROP COLUMN IF EXISTS "parent_id", DROP COLUMN IF EXISTS "deps_pending",
        DROP COLUMN IF EXISTS "has_dependents", DROP COLUMN IF EXISTS "on_child_failure"`,
    ];
  },
};

/** Schema step 5, the flows part (see ./README.md). Flows first in each list; events (part B) after. */
export const flowsDdl = {
  up: (n: TableNaming): string[] => [
    // --- flows and dependencies ---
    ...flowsPart.up(n),
    // --- events, progress and logs ---
    // NOTE: the last value of `job.progress()`; read by getJob, never by the claim.
    `ALTER TABLE ${n.qualified} ADD COLUMN IF NOT EXISTS "progress" jsonb`,
    // NOTE: `job.log()` entries live off the hot job row: a job row that grew with every log line
    // would make every later update of it (heartbeat, completion) copy the whole log.
    `CREATE TABLE IF NOT EXISTS ${n.logsQualified} (
      "id" bigserial PRIMARY KEY,
      "job_id" bigint NOT NULL,
      "at" timestamptz NOT NULL,
      "message" text NOT NULL,
      "truncated" boolean NOT NULL DEFAULT false
    )`,
    `CREATE INDEX IF NOT EXISTS "${n.prefix}_logs_job_idx" ON ${n.logsQualified} ("job_id", "id")`,
  ],
  down: (n: TableNaming): string[] => [
    // --- events, progress and logs ---
    `DROP TABLE IF EXISTS ${n.logsQualified}`,
    `ALTER TABLE ${n.qualified} DROP COLUMN IF EXISTS "progress"`,
    // --- flows and dependencies ---
    ...flowsPart.down(n),
  ],
};
