import { Controller, Module, Post, Query, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { QueueModule, QueueService } from '../../../lib';
import { DATABASE_URL, sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { useChaosEnvironment } from './fixtures/chaos-db';

/**
 * OpenTelemetry across two processes: an HTTP request in this process enqueues (producer span,
 * child of the request's span); a worker in a child process runs the job (consumer span, child of
 * the producer span and linked to it). Each process exports its spans to memory; the child prints
 * its spans, and they must carry the producer's trace id.
 */
const env = useChaosEnvironment('obs_trace');
const { schema, workers } = env;
const ROOT = resolve(__dirname, '../../..');

interface ChildSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
  status: { code: number; message?: string };
  events: { name: string; attributes?: Record<string, unknown> }[];
}

@Controller()
class EnqueueController {
  constructor(private readonly queue: QueueService) {}

  /** What an HTTP instrumentation would do: the request in a server span, the add() inside it. */
  @Post('enqueue')
  enqueue(@Query('name') name: string) {
    return trace.getTracer('test-http').startActiveSpan('POST /enqueue', { kind: SpanKind.SERVER }, async (span) => {
      try {
        const job = await this.queue.add('traced', name, {});
        return { id: job.id, traceId: span.spanContext().traceId };
      } finally {
        span.end();
      }
    });
  }
}

describe('OpenTelemetry tracing', () => {
  const exporter = new InMemorySpanExporter();
  let app: INestApplication;
  let dir: string;
  let preload: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgq-otel-'));
    preload = join(dir, 'otel-child.js');
    // NOTE: the child's SDK: spans exported as JSON lines on stdout; no propagator registered, so
    // the library's own W3C fallback is what reads the job's trace context there.
    writeFileSync(
      preload,
      `const req = (m) => require(require.resolve(m, { paths: [${JSON.stringify(ROOT)}] }));
const api = req('@opentelemetry/api');
const { BasicTracerProvider, SimpleSpanProcessor } = req('@opentelemetry/sdk-trace-base');
const { AsyncLocalStorageContextManager } = req('@opentelemetry/context-async-hooks');
const exporter = {
  export(spans, done) {
    for (const s of spans) {
      const c = s.spanContext();
      process.stdout.write('OTEL_SPAN ' + JSON.stringify({ name: s.name, kind: s.kind, traceId: c.traceId, spanId: c.spanId,
        parentSpanId: s.parentSpanContext ? s.parentSpanContext.spanId : s.parentSpanId,
        links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })), attributes: s.attributes, status: s.status,
        events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })) }) + '\\n');
    }
    done({ code: 0 });
  },
  shutdown: async () => undefined,
};
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
`,
    );
  });
  afterAll(async () => {
    await workers.killAll();
    await app?.close();
    trace.disable();
    context.disable();
    propagation.disable();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without an SDK the spans are no-ops and no trace context is written', async () => {
    @Module({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: DATABASE_URL, poolSize: 2 }),
        QueueModule.forRoot({ schema, worker: false, tracing: true }),
      ],
    })
    class NoSdkModule {}
    const plain = await NestFactory.createApplicationContext(NoSdkModule, { logger: false });
    try {
      const queue = plain.get(QueueService);
      const one = await queue.add('untraced', 'n', {});
      const bulk = await queue.addBulk(Array.from({ length: 100 }, () => ({ queue: 'untraced', name: 'n', data: {} })));
      const [{ n }] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[]) AND trace_context IS NULL`, [
        [one.id, ...bulk.map((j) => j.id)],
      ]);
      expect(n).toBe(101);
    } finally {
      await plain.close();
    }
  });

  it('an HTTP request enqueues, a worker in another process runs it: one trace, producer to consumer', async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

    @Module({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: DATABASE_URL, poolSize: 2 }),
        QueueModule.forRoot({ schema, worker: false, tracing: true }),
      ],
      controllers: [EnqueueController],
    })
    class HttpModule {}
    app = await NestFactory.create(HttpModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    const http = request(`http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`);

    const child = workers.spawn({ queue: 'traced', maxAttempts: 2, queueOptions: { tracing: true } }, ['--require', preload]);
    expect(await child.ready).toBe(true);

    const ok = (await http.post('/enqueue?name=noop').expect(201)).body as { id: string; traceId: string };
    const bad = (await http.post('/enqueue?name=fail').expect(201)).body as { id: string; traceId: string };
    const childSpans = () =>
      [...child.output.matchAll(/^OTEL_SPAN (.*)$/gm)].map((m) => JSON.parse(m[1]) as ChildSpan).filter((s) => s.kind === SpanKind.CONSUMER);
    await waitFor('the consumer spans (1 + 2 attempts)', () => childSpans().length === 3);

    // This process: the request's span and the producer span under it.
    const local = exporter.getFinishedSpans();
    const producerOf = (id: string) => local.find((s: ReadableSpan) => s.kind === SpanKind.PRODUCER && s.attributes['messaging.message.id'] === id)!;
    const server = (traceId: string) => local.find((s: ReadableSpan) => s.kind === SpanKind.SERVER && s.spanContext().traceId === traceId)!;
    for (const job of [ok, bad]) {
      const producer = producerOf(job.id);
      expect(producer).toBeDefined();
      expect(producer.spanContext().traceId).toBe(job.traceId);
      expect(producer.parentSpanContext?.spanId).toBe(server(job.traceId).spanContext().spanId);
      expect(producer.name).toBe('send traced');
      expect(producer.attributes).toMatchObject({
        'messaging.system': 'nestjs_pg_queue',
        'messaging.destination.name': 'traced',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'add',
      });
    }
    const [{ trace_context }] = await sql<{ trace_context: { traceparent: string } }>(`SELECT trace_context FROM "${schema}".queue_jobs WHERE id = $1`, [ok.id]);
    expect(trace_context.traceparent).toBe(`00-${ok.traceId}-${producerOf(ok.id).spanContext().spanId}-01`);

    // The child: a consumer span per attempt, in the producer's trace, child of and linked to it.
    for (const job of [ok, bad]) {
      const producer = producerOf(job.id).spanContext();
      const spans = childSpans().filter((s) => s.attributes['messaging.message.id'] === job.id);
      for (const span of spans) {
        expect(span.traceId).toBe(job.traceId);
        expect(span.parentSpanId).toBe(producer.spanId);
        expect(span.links).toEqual([{ traceId: producer.traceId, spanId: producer.spanId }]);
        expect(span).toMatchObject({
          name: 'process traced',
          attributes: { 'messaging.system': 'nestjs_pg_queue', 'messaging.destination.name': 'traced', 'messaging.operation.type': 'process' },
        });
      }
    }
    const [okSpan] = childSpans().filter((s) => s.attributes['messaging.message.id'] === ok.id);
    expect(okSpan.attributes).toMatchObject({ 'nestjs_pg_queue.job.name': 'noop', 'nestjs_pg_queue.job.attempt': 1, 'nestjs_pg_queue.job.outcome': 'completed' });
    expect(okSpan.status.code).toBe(SpanStatusCode.UNSET);
    const failed = childSpans().filter((s) => s.attributes['messaging.message.id'] === bad.id).sort((a, b) => Number(a.attributes['nestjs_pg_queue.job.attempt']) - Number(b.attributes['nestjs_pg_queue.job.attempt']));
    expect(failed.map((s) => s.attributes['nestjs_pg_queue.job.outcome'])).toEqual(['retrying', 'failed']);
    for (const span of failed) {
      expect(span.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'failing on purpose' });
      expect(span.events).toEqual([expect.objectContaining({ name: 'exception', attributes: expect.objectContaining({ 'exception.message': 'failing on purpose' }) })]);
    }
  });

  it('addBulk: one producer span for the batch, its context on every job', async () => {
    exporter.reset();
    const queue = app.get(QueueService);
    const jobs = await trace.getTracer('test').startActiveSpan('batch', async (span) => {
      try {
        return await queue.addBulk(Array.from({ length: 100 }, () => ({ queue: 'bulk-traced', name: 'n', data: {} })));
      } finally {
        span.end();
      }
    });
    const producer = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER)!;
    expect(producer.attributes).toMatchObject({ 'messaging.operation.name': 'addBulk', 'messaging.batch.message_count': 100, 'messaging.destination.name': 'bulk-traced' });
    const rows = await sql<{ traceparent: string }>(`SELECT trace_context->>'traceparent' AS traceparent FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[])`, [jobs.map((j) => j.id)]);
    expect(rows).toHaveLength(100);
    expect(new Set(rows.map((r) => r.traceparent))).toEqual(new Set([`00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01`]));
  });

  it('jobs with a unique key carry the context too (add, and a bulk that would go by COPY)', async () => {
    exporter.reset();
    const queue = app.get(QueueService);
    const one = await queue.add('unique-traced', 'n', {}, { unique: { key: 'only-one' } });
    const bulk = await queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ queue: 'unique-traced', name: 'n', data: {}, options: { unique: { key: `k${i}` } } })));
    const producers = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.PRODUCER);
    expect(producers).toHaveLength(2);
    const expected = (i: number) => `00-${producers[i].spanContext().traceId}-${producers[i].spanContext().spanId}-01`;
    const traceparentOf = async (ids: string[]) =>
      (await sql<{ traceparent: string | null }>(`SELECT trace_context->>'traceparent' AS traceparent FROM "${schema}".queue_jobs WHERE id = ANY($1::bigint[])`, [ids])).map((r) => r.traceparent);
    expect(await traceparentOf([one.id])).toEqual([expected(0)]);
    const bulkParents = await traceparentOf(bulk.map((j) => j.id));
    expect(bulkParents).toHaveLength(100);
    expect(new Set(bulkParents)).toEqual(new Set([expected(1)]));
  });
});
