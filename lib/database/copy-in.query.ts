import type { Connection } from 'pg';

/** What a {@link CopyInQuery} resolves with: the rows of the script's last result set, as text. */
export type CopyInRows = Record<string, string | null>[];

/**
 * Writes the data of the script's COPY statements in order: `send` rows (any number of times),
 * then `end` the current COPY and go on with the next. May throw to abort: nothing is stored.
 */
export type CopyInProducer = (send: (text: string) => void, end: () => void) => void;

interface CopyConnection extends Connection {
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

/**
 * A node-postgres "submittable" (the interface pg-cursor and pg-copy-streams use) that runs a
 * simple-protocol script containing `COPY … FROM STDIN` statements and streams their rows with it.
 * PostgreSQL runs a multi-statement simple query as one implicit transaction, so the statements
 * around the COPY, the COPY and the commit take a single exchange, and any error (or an abort by
 * the producer) rolls all of it back.
 *
 * NOTE: the rows are sent right behind the script, not after the server's CopyInResponse, and as
 * they are produced: the server parses and inserts the first rows while this process still
 * validates and encodes the next ones (the two run on different cores). The protocol allows it:
 * the server reads CopyData when it reaches the COPY, and if an earlier statement failed it drops
 * CopyData, CopyDone and CopyFail messages that arrive outside a COPY.
 *
 * Only what the bulk insert needs: the rows of the last result set come back with every value as
 * text (the script casts what it returns); earlier result sets are ignored.
 */
export class CopyInQuery {
  /** Set by whoever submits the query (`JobRepository.submit`), before submitting it. */
  callback?: (error: Error | null, rows?: CopyInRows) => void;
  /** Told whenever the server shows progress (it took a COPY, or answers the final SELECT). */
  onProgress?: () => void;
  private fields: string[] = [];
  private rows: CopyInRows = [];
  /** Set when the producer threw: reported instead of the server's "COPY from stdin failed". */
  private producerError?: unknown;

  constructor(
    readonly text: string,
    private readonly produce: CopyInProducer,
  ) {}

  submit(connection: CopyConnection): null {
    connection.query(this.text);
    try {
      this.produce(
        (text) => connection.sendCopyFromChunk(Buffer.from(text, 'utf8')),
        () => connection.endCopyFrom(),
      );
    } catch (error) {
      this.producerError = error;
      connection.sendCopyFail(error instanceof Error ? error.message : String(error));
    }
    return null;
  }

  /** The rows were sent already (see the class comment). */
  handleCopyInResponse(): void {
    this.onProgress?.();
  }

  handleRowDescription(message: { fields?: { name: string }[] }): void {
    this.onProgress?.();
    // NOTE: a new result set starts: only the last one is kept.
    this.fields = (message.fields ?? []).map((f) => f.name);
    this.rows = [];
  }

  handleDataRow(message: { fields: (string | null)[] }): void {
    const row: Record<string, string | null> = {};
    this.fields.forEach((name, i) => (row[name] = message.fields[i]));
    this.rows.push(row);
  }

  handleError(error: Error): void {
    // NOTE: pg detaches the query from the client on any error (the ReadyForQuery that follows a
    // server error reaches no query), so the error ends the query here, as it does pg's own Query.
    this.finish(error);
  }

  handleReadyForQuery(): void {
    this.finish(null);
  }

  /** A statement of the script is done: each COPY piece's rows are in. */
  handleCommandComplete(): void {
    this.onProgress?.();
  }

  handleEmptyQuery(): void {}

  handlePortalSuspended(): void {}

  handleCopyData(): void {}

  private finish(error: Error | null): void {
    const callback = this.callback;
    this.callback = undefined;
    if (this.producerError !== undefined) callback?.(this.producerError as Error);
    else if (error) callback?.(error);
    else callback?.(null, this.rows);
  }
}
