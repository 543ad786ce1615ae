import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type * as OtelApi from '@opentelemetry/api';
import { RESOLVED_QUEUE_OPTIONS } from '../../queue.constants';
import { loadOptionalPeer } from '../optional-peer';
import { claimedTraceContexts } from '../../database/trace-context';
import type { Job } from '../../interfaces/job.interface';
import type { ResolvedQueueOptions } from '../../queue-options.resolver';
import type { AttemptOutcome } from '../../database/job.repository';

/** `messaging.system` of our spans (no registered value fits a job table in PostgreSQL). */
export const MESSAGING_SYSTEM = 'nestjs_pg_queue';
const TRACER_NAME = 'nestjs-pg-queue';

/**
 * OpenTelemetry spans of `QueueModule.forRoot({ tracing: true })`: a producer span around each
 * `add()`/`addBulk()`, whose context travels with the job (the `trace_context` column, written only
 * when that span records), and a consumer span around each attempt, child of the producer's span
 * (same trace) and linked to it, in whose context the handler runs. Attributes follow the
 * messaging semantic conventions (system, destination, operation, message id) plus the job's name,
 * attempt and outcome; a failed attempt records its error. `@opentelemetry/api` is required only
 * when tracing is on; without an SDK its spans are no-ops and nothing is written.
 */
@Injectable()
export class QueueTracing implements OnModuleInit {
  private api?: typeof OtelApi;
  private tracer?: OtelApi.Tracer;

  constructor(@Inject(RESOLVED_QUEUE_OPTIONS) private readonly options: ResolvedQueueOptions) {}

  onModuleInit(): void {
    if (!this.options.tracing) return;
    this.api = loadOptionalPeer<typeof OtelApi>('@opentelemetry/api', 'QueueModule.forRoot({ tracing: true })');
    this.tracer = this.api.trace.getTracer(TRACER_NAME);
  }

  /** Whether tracing is on (checked once per add on the hot path: a property read). */
  get enabled(): boolean {
    return this.tracer !== undefined;
  }

  /**
   * Runs an enqueue in a producer span; `work` gets the trace context to store with the jobs
   * (JSON text), or undefined when the span does not record (no SDK, not sampled).
   */
  async produce<R extends Job | Job[]>(operation: 'add' | 'addBulk', queue: string | undefined, count: number, work: (traceContext: string | undefined) => Promise<R>): Promise<R> {
    const api = this.api!;
    const attributes: OtelApi.Attributes = {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.operation.type': 'send',
      'messaging.operation.name': operation,
    };
    if (queue !== undefined) attributes['messaging.destination.name'] = queue;
    if (operation === 'addBulk') attributes['messaging.batch.message_count'] = count;
    return this.tracer!.startActiveSpan(`send ${queue ?? '(several queues)'}`, { kind: api.SpanKind.PRODUCER, attributes }, async (span) => {
      try {
        let traceContext: string | undefined;
        if (span.isRecording()) {
          const carrier: Record<string, string> = {};
          api.propagation.inject(api.context.active(), carrier);
          // NOTE: without a propagator registered nothing is injected: the W3C form by hand then.
          if (!carrier.traceparent) {
            const c = span.spanContext();
            carrier.traceparent = `00-${c.traceId}-${c.spanId}-0${c.traceFlags & api.TraceFlags.SAMPLED}`;
          }
          traceContext = JSON.stringify(carrier);
        }
        const result = await work(traceContext);
        if (!Array.isArray(result)) span.setAttribute('messaging.message.id', result.id);
        return result;
      } catch (error) {
        recordError(api, span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /**
   * Runs one attempt in a consumer span, in whose context the handler runs: child of the job's
   * producer span when it carried one (same trace id), and linked to it.
   */
  async consume(job: Job, attempt: () => Promise<AttemptOutcome | undefined>): Promise<AttemptOutcome | undefined> {
    const api = this.api!;
    const carrier = claimedTraceContexts.get(job);
    let context = api.ROOT_CONTEXT;
    let producer: OtelApi.SpanContext | undefined;
    if (carrier) {
      context = api.propagation.extract(api.ROOT_CONTEXT, carrier);
      producer = api.trace.getSpanContext(context);
      // NOTE: without a propagator registered nothing is extracted: the W3C form by hand then.
      if (!producer) {
        producer = parseTraceparent(carrier.traceparent);
        if (producer) context = api.trace.setSpanContext(api.ROOT_CONTEXT, producer);
      }
    }
    const links = producer ? [{ context: producer }] : [];
    const span = this.tracer!.startSpan(
      `process ${job.queue}`,
      {
        kind: api.SpanKind.CONSUMER,
        links,
        attributes: {
          'messaging.system': MESSAGING_SYSTEM,
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': job.queue,
          'messaging.message.id': job.id,
          'nestjs_pg_queue.job.name': job.name,
          'nestjs_pg_queue.job.attempt': job.attempts,
        },
      },
      context,
    );
    try {
      const outcome = await api.context.with(api.trace.setSpan(context, span), attempt);
      span.setAttribute('nestjs_pg_queue.job.outcome', outcomeName(outcome));
      if (outcome?.error) recordJobError(api, span, outcome.error);
      return outcome;
    } finally {
      span.end();
    }
  }
}

function outcomeName(outcome: AttemptOutcome | undefined): string {
  if (!outcome) return 'abandoned';
  if (outcome.state === 'completed' || outcome.state === 'failed') return outcome.state;
  return outcome.refund ? 'requeued' : 'retrying';
}

function recordError(api: typeof OtelApi, span: OtelApi.Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: (error as Error)?.message ?? String(error) });
}

/** The error an attempt wrote (JSON text of a JobError), recorded as the span's exception. */
function recordJobError(api: typeof OtelApi, span: OtelApi.Span, errorJson: string): void {
  let error: { name?: string; message?: string; stack?: string } = {};
  try {
    error = JSON.parse(errorJson) as typeof error;
  } catch {
    error = { message: errorJson };
  }
  span.recordException({ name: error.name ?? 'Error', message: error.message ?? '', stack: error.stack });
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: error.message ?? '' });
}

/** A W3C traceparent as a span context (used when no propagator is registered). */
function parseTraceparent(traceparent: string | undefined): OtelApi.SpanContext | undefined {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent ?? '');
  if (!match || /^0+$/.test(match[1]) || /^0+$/.test(match[2])) return undefined;
  return { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16), isRemote: true };
}
