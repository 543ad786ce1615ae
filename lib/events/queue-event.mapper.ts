import type { JobLifecycleEvent } from '../worker/job-lifecycle';
import type { WireJobEvent } from '../database/job-notification.listener';
import { QUEUE_EVENT_TYPES, type QueueEvent, type QueueEventType } from '../interfaces/queue-event.interface';
import type { JobError, JobState } from '../interfaces/job.interface';

/** The public event types a lifecycle event is told as (none for a hand-back: `requeued`). */
export function publicTypesOf(event: JobLifecycleEvent): readonly QueueEventType[] {
  switch (event.type) {
    case 'requeued':
      return [];
    // NOTE: a rescue that spent the last attempt is a failure like any other: told as both.
    case 'rescued':
      return event.job.state === 'failed' ? RESCUED_AND_FAILED : RESCUED;
    default:
      return SAME[event.type];
  }
}

const RESCUED: readonly QueueEventType[] = ['rescued'];
const RESCUED_AND_FAILED: readonly QueueEventType[] = ['rescued', 'failed'];
const SAME = Object.fromEntries(QUEUE_EVENT_TYPES.map((t) => [t, [t]])) as unknown as Record<QueueEventType, readonly QueueEventType[]>;

/** The state a job is in after a lifecycle event. */
function stateAfter(event: JobLifecycleEvent, type: QueueEventType): string {
  if (type === 'failed') return 'failed';
  switch (event.type) {
    case 'retrying':
    case 'unblocked':
      return 'pending';
    case 'progress':
      return 'active';
    case 'rescued':
      return event.job.state;
    default:
      return event.type;
  }
}

/** The event's wire code (1-based index in QUEUE_EVENT_TYPES). */
export function eventCode(type: QueueEventType): number {
  return QUEUE_EVENT_TYPES.indexOf(type) + 1;
}

/** A lifecycle event as one local `QueueEvent` of `type`; the result or error parsed from its JSON. */
export function toLocalEvent(event: JobLifecycleEvent, type: QueueEventType): QueueEvent {
  const { job } = event;
  const told: QueueEvent = {
    type,
    jobId: job.id,
    queue: job.queue,
    name: job.name,
    state: stateAfter(event, type) as JobState,
    attempts: attemptsOf(event),
    at: new Date(event.at),
    scope: 'local',
  };
  if (event.type === 'completed') told.result = JSON.parse(event.result);
  else if (event.type === 'failed' || event.type === 'retrying') told.error = JSON.parse(event.error) as JobError;
  else if (event.type === 'progress') told.progress = event.progress;
  return told;
}

/** A lifecycle event as it goes into a global-event notification. */
export function toWireEvent(event: JobLifecycleEvent, type: QueueEventType): WireJobEvent {
  const { job } = event;
  return [eventCode(type), job.id, job.queue, job.name, attemptsOf(event), stateAfter(event, type), event.at];
}

/**
 * The job's attempts. NOTE: a flow event's job is what the flow trigger knows (id, queue, name): a
 * blocked or released job has not run since it was blocked, and its attempts are not known here; 0.
 */
function attemptsOf(event: JobLifecycleEvent): number {
  return 'attempts' in event.job ? event.job.attempts : 0;
}

/** A received global event, or undefined for a code this version does not know. */
export function fromWireEvent([code, id, queue, name, attempts, state, at]: WireJobEvent): QueueEvent | undefined {
  const type = QUEUE_EVENT_TYPES[code - 1];
  if (!type) return undefined;
  return { type, jobId: id, queue, name, state: state as JobState, attempts, at: new Date(at), scope: 'global' };
}

/** Largest notification payload we send: PostgreSQL refuses 8,000 bytes and more. */
export const MAX_EVENT_PAYLOAD_BYTES = 7000;

/** Packs events into as few notification payloads as fit under {@link MAX_EVENT_PAYLOAD_BYTES}. */
export function packWireEvents(events: WireJobEvent[]): string[] {
  const payloads: string[] = [];
  let part: string[] = [];
  let bytes = 0;
  const close = () => {
    if (part.length > 0) payloads.push(`{"t":"ev","e":[${part.join(',')}]}`);
    part = [];
    bytes = 0;
  };
  for (const event of events) {
    const text = JSON.stringify(event);
    const size = Buffer.byteLength(text) + 1;
    if (bytes + size > MAX_EVENT_PAYLOAD_BYTES - 20) close();
    part.push(text);
    bytes += size;
  }
  close();
  return payloads;
}
