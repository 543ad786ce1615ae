import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { OnQueueEvent, type QueueEvent } from '../../../lib';
import { createTestApp } from '../helpers/app';
import { sql } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';
import { useChaosEnvironment } from './fixtures/chaos-db';

/**
 * Global events between real processes: child workers write, this process listens. A worker is
 * SIGKILLed mid-job; another one's rescuer puts the job back, runs it, and both are heard here.
 */
const env = useChaosEnvironment('chaos_gevents');
const { schema, workers } = env;

@Injectable()
class Heard {
  static events: QueueEvent[] = [];

  @OnQueueEvent('active', { scope: 'global' })
  @OnQueueEvent('rescued', { scope: 'global' })
  @OnQueueEvent('completed', { scope: 'global' })
  record(event: QueueEvent) {
    Heard.events.push(event);
  }
}

describe('chaos: global events from worker processes', () => {
  let listener: INestApplicationContext;

  beforeAll(async () => {
    listener = await createTestApp({ schema, providers: [Heard], queue: { worker: false } });
  });
  afterAll(async () => {
    await workers.killAll();
    await listener?.close();
  });

  const of = (id: string) => Heard.events.filter((e) => e.jobId === id).map((e) => [e.type, e.attempts, e.state]);

  it('hears a SIGKILLed worker\'s job start, be rescued by another process, and complete there', async () => {
    const settings = { queue: 'gev', worker: { lockDurationMs: 1000, pollIntervalMs: 50 } };
    const victim = await workers.start(settings);
    const job = await env.queue.add('gev', 'sleep', { ms: 1500 });
    await waitFor('the victim to start the job', () => of(job.id).some(([type]) => type === 'active'));
    victim.kill('SIGKILL');
    await victim.exited;
    const rescuer = await workers.start(settings);
    await waitFor('the rescue and the second run', () => of(job.id).some(([type]) => type === 'completed'), 20_000);
    expect(of(job.id)).toEqual([
      ['active', 1, 'active'],
      ['rescued', 1, 'pending'],
      ['active', 2, 'active'],
      ['completed', 2, 'completed'],
    ]);
    const [{ pid }] = await sql<{ pid: number }>(`SELECT pid FROM "${schema}".markers WHERE job_id = $1 AND kind = 'end'`, [job.id]);
    expect(pid).toBe(rescuer.pid);
  });
});
