import type { Duplex } from 'node:stream';
import type { WriterDescriptor } from './storage-row-encoder.js';

/** What one AppendRows request came back with (a subset of AppendRowsResponse). */
export interface AppendResponse {
  /** gRPC code and message of a failed append; absent when the rows were written. */
  readonly error?: { readonly code: number; readonly message: string };
  readonly rowErrors: ReadonlyArray<{ readonly index: number; readonly message: string }>;
  /** The table has columns the writer schema lacks (the server sent `updated_schema`). */
  readonly schemaUpdated: boolean;
}

/** A failure of the stream itself (closed, broken, timed out): every append in flight fails with it. */
export class StreamFailure extends Error {
  constructor(
    message: string,
    /** gRPC status code when the stream ended with one; 14 (UNAVAILABLE) when it simply broke. */
    readonly code: number,
  ) {
    super(message);
    this.name = 'StreamFailure';
  }
}

/** The generated client's bidi call, as far as a connection needs it. */
export type OpenAppendStream = (headers: Record<string, string>) => Duplex;

interface RawResponse {
  error?: { code?: number; message?: string } | null;
  rowErrors?: Array<{ index?: number | string | { toString(): string }; message?: string }> | null;
  updatedSchema?: { fields?: unknown[] } | null;
}

interface Pending {
  resolve(response: AppendResponse): void;
  reject(err: StreamFailure): void;
}

const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

/**
 * One AppendRows bidi stream to one table's `_default` stream. Requests are answered in order, so
 * answers are matched to a FIFO of pending appends. The writer schema goes with the first request
 * only (later requests on the stream reuse it): a new writer schema needs a new connection.
 *
 * Once the stream fails, closes or an append times out, the connection is done: every pending
 * append is rejected (their rows may or may not have been written, so they are retried: duplicates
 * possible, loss never), and the owner opens a new connection for the next write. A connection is
 * never reopened in place, so an answer can never be matched to an append of another stream.
 */
export class StorageWriteConnection {
  private readonly stream: Duplex;
  private readonly pending: Pending[] = [];
  private schemaSent = false;
  private failure: StreamFailure | undefined;
  private retiring = false;

  constructor(
    open: OpenAppendStream,
    private readonly streamName: string,
    readonly descriptor: WriterDescriptor,
    private readonly onFailure: (failure: StreamFailure) => void,
  ) {
    // The routing header BigQuery needs to find the stream's region.
    this.stream = open({ 'x-goog-request-params': `write_stream=${streamName}` });
    this.stream.on('data', (response: RawResponse) => this.answer(response));
    // Without an 'error' listener a stream error would be an unhandled 'error' event: a crash.
    this.stream.on('error', (err: Error & { code?: unknown; details?: unknown }) => {
      const code = typeof err.code === 'number' ? err.code : UNAVAILABLE;
      this.fail(new StreamFailure(`AppendRows stream failed: ${err.message}`, code));
    });
    this.stream.on('close', () => this.fail(new StreamFailure('AppendRows stream closed', UNAVAILABLE)));
    this.stream.on('end', () => this.fail(new StreamFailure('AppendRows stream ended by the server', UNAVAILABLE)));
  }

  get usable(): boolean {
    return this.failure === undefined && !this.retiring;
  }

  get inFlight(): number {
    return this.pending.length;
  }

  append(rows: readonly Buffer[], timeoutMs: number): Promise<AppendResponse> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.retiring) return Promise.reject(new StreamFailure('connection retired: the writer schema changed', UNAVAILABLE));
    const request: Record<string, unknown> = {
      writeStream: this.streamName,
      protoRows: this.schemaSent ? { rows: { serializedRows: rows } } : { writerSchema: { protoDescriptor: this.descriptor }, rows: { serializedRows: rows } },
    };
    this.schemaSent = true;
    return new Promise<AppendResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The answer may still come, but this stream's order can no longer be trusted: close it.
        this.fail(new StreamFailure(`no AppendRows answer within ${timeoutMs} ms`, DEADLINE_EXCEEDED));
      }, timeoutMs);
      timer.unref();
      this.pending.push({
        resolve: (response) => {
          clearTimeout(timer);
          resolve(response);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.stream.write(request);
    });
  }

  close(): void {
    this.fail(new StreamFailure('connection closed by the writer', UNAVAILABLE));
  }

  /** Takes no more appends and closes once those in flight are answered (a writer schema changed). */
  retire(): void {
    this.retiring = true;
    if (this.pending.length === 0) this.close();
  }

  private answer(raw: RawResponse): void {
    const next = this.pending.shift();
    if (!next) return;
    const error =
      raw.error && typeof raw.error.code === 'number' && raw.error.code !== 0 ? { code: raw.error.code, message: raw.error.message ?? '' } : undefined;
    // Whether a failed first request left the writer schema with the server is not documented:
    // after any failed append the next request carries it again (a few hundred bytes).
    if (error) this.schemaSent = false;
    next.resolve({
      ...(error ? { error } : {}),
      rowErrors: (raw.rowErrors ?? []).map((e) => ({ index: Number(String(e.index ?? -1)), message: e.message ?? '' })),
      schemaUpdated: (raw.updatedSchema?.fields?.length ?? 0) > 0,
    });
    if (this.retiring && this.pending.length === 0) this.close();
  }

  private fail(failure: StreamFailure): void {
    if (this.failure) return;
    this.failure = failure;
    for (const pending of this.pending.splice(0)) pending.reject(failure);
    this.stream.destroy();
    this.onFailure(failure);
  }
}
