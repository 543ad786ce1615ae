import { Logger } from '@nestjs/common';
import type { Notification, PoolClient } from 'pg';
import type { JobRepository } from './job.repository';
import { destroyConnection } from './bounded-statement';

/** What the job table's channel carries. */
export type JobNotification =
  /** Jobs were added (or went back to pending) in `queue`; the earliest is due in `inMs`. */
  | { type: 'job'; queue: string; inMs: number }
  /**
   * An active job may have been cancelled: whoever runs it should check its row. Only a hint (any
   * session that can connect can send one): the row decides, never the notification.
   */
  | { type: 'cancel'; id: string }
  /** Some process started listening to global job events: writers should re-read who listens. */
  | { type: 'listeners' }
  /** A cron schedule was created, changed or resumed; its next run is due in `inMs`. A hint too. */
  | { type: 'schedule'; inMs: number }
  /**
   * Flows: job `id` was blocked again, released (`unblocked`) or failed by a dependency's failure,
   * by the flow trigger, in a transaction of worker `by` (null when no worker's write caused it).
   * Sent at commit.
   */
  | { type: 'flow'; event: 'blocked' | 'unblocked' | 'failed'; id: string; queue: string; name: string; by: string | null }
  /** `queue` was paused: jobs of it claimed ahead and not started are to be handed back. */
  | { type: 'pause'; queue: string };

/**
 * One job event as a global-event notification carries it (`{t:'ev', e:[...]}`): the event type's
 * code (see QUEUE_EVENT_TYPES), job id, queue, job name, attempts, state after it, and the sender's
 * clock (epoch ms). Only a hint, like every notification: anyone who can connect can send one.
 */
export type WireJobEvent = [code: number, id: string, queue: string, name: string, attempts: number, state: string, at: number];

export interface NotificationHandlers {
  onNotification(notification: JobNotification): void;
  /** Called after every (re)connection: anything sent while disconnected was missed, so poll. */
  onConnected(): void;
  /** Global job events; without this handler they are ignored. */
  onEvents?(events: WireJobEvent[]): void;
}

const MAX_RECONNECT_DELAY_MS = 5000;
/** How every global-event payload starts (see `packWireEvents`). */
const EVENTS_PREFIX = '{"t":"ev"';

/**
 * One dedicated connection per process that LISTENs on the job table's channel. It reconnects
 * with backoff when the database restarts or the connection is terminated, re-LISTENs, and then
 * asks for one poll to catch what was sent meanwhile.
 */
export class JobNotificationListener {
  private readonly logger = new Logger('QueueListener');
  private client?: PoolClient;
  private stopped = false;
  private failures = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private connecting?: Promise<void>;

  constructor(
    private readonly repository: JobRepository,
    private readonly handlers: NotificationHandlers,
  ) {}

  /** Whether the LISTEN connection is up right now (for the health indicator). */
  get listening(): boolean {
    return this.client !== undefined;
  }

  /** Connects; resolves once listening, or after the first failure (it keeps retrying behind). */
  start(): Promise<void> {
    this.stopped = false;
    return this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('notification');
      // NOTE: end() waits for the server's goodbye; with the database gone it may never come.
      await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
      // NOTE: and on a silent network the socket would stay open until it speaks again: close it.
      destroyConnection(client);
    }
  }

  /**
   * Runs a statement on the listening connection (session state that must live and die with it:
   * the presence locks of global event listeners). False when not connected right now.
   */
  async run(text: string, values: unknown[] = []): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    await client.query({ text, values, query_timeout: this.repository.settings.queryTimeoutMs } as never);
    return true;
  }

  private connect(): Promise<void> {
    this.connecting = this.doConnect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    if (this.stopped) return;
    const client = this.repository.createDedicatedClient() as PoolClient & { connect(): Promise<void> };
    // NOTE: an 'error' listener must exist before connect(): an unhandled 'error' event would
    // crash the process when the database goes away.
    client.on('error', (error) => this.onLost(client, error));
    client.on('end', () => this.onLost(client, new Error('connection ended')));
    client.on('notification', (message) => this.onMessage(message));
    try {
      await client.connect();
      // NOTE: bounded like every statement of ours (pg's own read timeout: on expiry the query
      // fails, onLost ends the client, and end() destroys a socket with a query still in flight).
      await client.query({ text: `LISTEN "${this.repository.naming.channel}"`, query_timeout: this.repository.settings.queryTimeoutMs } as never);
    } catch (error) {
      this.onLost(client, error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (this.failures > 0) this.logger.log('LISTEN connection restored');
    this.failures = 0;
    this.handlers.onConnected();
  }

  private onLost(client: PoolClient, error: unknown): void {
    client.removeAllListeners('notification');
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    if (this.client && this.client !== client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    if (this.stopped || this.reconnectTimer) return;
    this.failures++;
    const delay = Math.min(100 * 2 ** (this.failures - 1), MAX_RECONNECT_DELAY_MS);
    if (this.failures === 1 || this.failures % 10 === 0) {
      this.logger.warn(`LISTEN connection lost (${(error as { message?: unknown })?.message ?? String(error)}); reconnecting in ${delay} ms, polling meanwhile`);
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
  }

  private onMessage(message: Notification): void {
    if (!message.payload) return;
    // NOTE: a worker with no use for global events gets every batch of them too (same channel):
    // skipped unparsed, so they cost it next to nothing.
    if (!this.handlers.onEvents && message.payload.startsWith(EVENTS_PREFIX)) return;
    try {
      const body = JSON.parse(message.payload) as { t: string; q?: string; in?: number; id?: string; e?: unknown; n?: string; w?: string | null };
      if (body.t === 'job' && typeof body.q === 'string') {
        this.handlers.onNotification({ type: 'job', queue: body.q, inMs: Number(body.in) || 0 });
      } else if (body.t === 'cancel' && typeof body.id === 'string') {
        this.handlers.onNotification({ type: 'cancel', id: body.id });
      } else if (body.t === 'ev' && this.handlers.onEvents && Array.isArray(body.e)) {
        const events = body.e.filter(isWireJobEvent);
        if (events.length > 0) this.handlers.onEvents(events);
      } else if (body.t === 'listeners') {
        this.handlers.onNotification({ type: 'listeners' });
      } else if (body.t === 'schedule') {
        this.handlers.onNotification({ type: 'schedule', inMs: Number(body.in) || 0 });
      } else if (body.t === 'flow' && (body.e === 'blocked' || body.e === 'unblocked' || body.e === 'failed') && typeof body.id === 'string' && typeof body.q === 'string') {
        this.handlers.onNotification({ type: 'flow', event: body.e, id: body.id, queue: body.q, name: String(body.n ?? ''), by: typeof body.w === 'string' ? body.w : null });
      } else if (body.t === 'pause' && typeof body.q === 'string') {
        this.handlers.onNotification({ type: 'pause', queue: body.q });
      }
    } catch {
      // NOTE: not the payload itself: anyone who can connect can NOTIFY on this channel.
      this.logger.debug(`Ignored a malformed notification (${message.payload.length} characters)`);
    }
  }
}

function isWireJobEvent(value: unknown): value is WireJobEvent {
  if (!Array.isArray(value) || value.length !== 7) return false;
  const [code, id, queue, name, attempts, state, at] = value as unknown[];
  return typeof code === 'number' && typeof id === 'string' && /^[0-9]{1,19}$/.test(id) && typeof queue === 'string' && typeof name === 'string'
    && typeof attempts === 'number' && typeof state === 'string' && typeof at === 'number';
}
