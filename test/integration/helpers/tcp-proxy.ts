import net from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that a test can cut (every connection dropped, new ones
 * refused) and restore: a database outage or restart, seen from the app, without touching the
 * real server that other test files use. It can also freeze: every socket stays open (new
 * connections are accepted too) but nothing is forwarded either way, as on a network that silently
 * drops packets; `unfreeze()` delivers what was held back and forwards again.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** While frozen: per socket, what it received and has not forwarded yet; and the closes held back. */
  private frozen?: { held: { to: net.Socket; chunk: Buffer }[]; closes: (() => void)[] };
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(port = 0): Promise<number> {
    if (this.server) return this.port;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      const destroyBoth = () => {
        client.destroy();
        upstream.destroy();
      };
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(from);
        from.on('data', (chunk: Buffer) => {
          if (this.frozen) this.frozen.held.push({ to, chunk });
          else to.write(chunk);
        });
        from.on('close', () => {
          this.sockets.delete(from);
          // NOTE: a frozen network carries no FIN either: the other side learns of it on unfreeze.
          if (this.frozen) this.frozen.closes.push(destroyBoth);
          else to.destroy();
        });
        from.on('error', () => (this.frozen ? this.frozen.closes.push(destroyBoth) : destroyBoth()));
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Drops every connection and stops listening (clients then get ECONNREFUSED). */
  async cut(): Promise<void> {
    this.frozen = undefined;
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /** Listens again on the same port (no-op if it is not cut). */
  async restore(): Promise<void> {
    await this.start(this.port);
  }

  /** Stops forwarding anything, keeping every socket open (a silent network). */
  freeze(): void {
    this.frozen ??= { held: [], closes: [] };
  }

  /** Forwards again: first what was held back, then the closes that happened meanwhile. */
  unfreeze(): void {
    const frozen = this.frozen;
    this.frozen = undefined;
    if (!frozen) return;
    for (const { to, chunk } of frozen.held) if (!to.destroyed) to.write(chunk);
    frozen.closes.forEach((close) => close());
  }

  async stop(): Promise<void> {
    await this.cut();
  }

  /** The DATABASE_URL rewritten to go through this proxy. */
  static urlThrough(url: string, port: number): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(port);
    return u.toString();
  }
}
