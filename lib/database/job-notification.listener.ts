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
  /** `queue` was paused: jobs of it claimed ahead and not started are to be handed back. */
  | { type: 'pause'; queue: string };

export interface NotificationHandlers {
  onNotification(notification: JobNotification): void;
  /** Called after every (re)connection: anything sent while disconnected was missed, so poll. */
  onConnected(): void;
}

const MAX_RECONNECT_DELAY_MS = 5000;

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
    try {
      const body = JSON.parse(message.payload) as { t: string; q?: string; in?: number; id?: string };
      if (body.t === 'job' && typeof body.q === 'string') {
        this.handlers.onNotification({ type: 'job', queue: body.q, inMs: Number(body.in) || 0 });
      } else if (body.t === 'cancel' && typeof body.id === 'string') {
        this.handlers.onNotification({ type: 'cancel', id: body.id });
      } else if (body.t === 'pause' && typeof body.q === 'string') {
        this.handlers.onNotification({ type: 'pause', queue: body.q });
      }
    } catch {
      // NOTE: not the payload itself: anyone who can connect can NOTIFY on this channel.
      this.logger.debug(`Ignored a malformed notification (${message.payload.length} characters)`);
    }
  }
}
