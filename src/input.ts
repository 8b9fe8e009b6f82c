/** `wsgi.input`: a pull-based request body stream with file-object semantics and a size limit. */

import { Buffer } from 'node:buffer';
import { ClientDisconnectedError, RequestBodyTooLargeError } from './errors.js';
import type { Bytes, InputStream } from './types.js';

/** Where a transport's request body comes from, already de-framed (no chunked encoding). */
export interface BodySource {
  /** The next chunk, or null at the end of the body. Rejects if the client leaves before the end. */
  next(): Promise<Bytes | null>;
  /** Stops reading; called by the server when the body will not be read any further. */
  cancel?(): void;
}

const EMPTY = Buffer.alloc(0);

/** A body with no bytes. */
export const EMPTY_SOURCE: BodySource = { next: () => Promise.resolve(null) };

/** What the gateway needs to know about a request body besides the InputStream methods. */
export interface BodyInput extends InputStream {
  /** Bytes received from the transport so far. */
  readonly bytesReceived: number;
  /** True once the whole body has been received. */
  readonly complete: boolean;
  /** True once the app's first read reached the transport (when a `100 Continue` is sent). */
  readonly started: boolean;
}

/**
 * The input of every request without a body (no Content-Length, or 0). It holds no state, so one
 * instance serves them all.
 */
class EmptyInput implements BodyInput {
  readonly bytesReceived = 0;
  readonly complete = true;
  readonly started = false;
  read(): Promise<Bytes> {
    return Promise.resolve(EMPTY);
  }
  readline(): Promise<Bytes> {
    return Promise.resolve(EMPTY);
  }
  readlines(): Promise<Bytes[]> {
    return Promise.resolve([]);
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Bytes> {}
}

export const EMPTY_INPUT: BodyInput = Object.freeze(new EmptyInput());

export interface InputOptions {
  /** Largest body accepted; reading past it rejects with RequestBodyTooLargeError (413). */
  maxBodySize: number;
  /**
   * The declared Content-Length, when there is one: the body is complete once that many bytes have
   * arrived, without asking the transport again. A transport must never deliver more.
   */
  length?: number | undefined;
  /** Called once, before the first read reaches the transport (sends `100 Continue` when expected). */
  onFirstRead?: (() => void) | undefined;
}

/** The InputStream every server hands to apps. EOF comes exactly at the end of the body. */
export class RequestInput implements BodyInput {
  #source: BodySource;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #received = 0;
  #eof = false;
  #error: unknown = undefined;
  #pending: Promise<void> | undefined;
  #limit: number;
  #onFirstRead: (() => void) | undefined;
  #started = false;

  #length: number;

  constructor(source: BodySource, options: InputOptions) {
    this.#source = source;
    this.#limit = options.maxBodySize;
    this.#length = options.length ?? Infinity;
    this.#onFirstRead = options.onFirstRead;
  }

  /** Bytes received from the transport so far. */
  get bytesReceived(): number {
    return this.#received;
  }

  /** True once the whole body has been received from the transport. */
  get complete(): boolean {
    return this.#eof;
  }

  /** True once a read reached the transport (and so a `100 Continue` may have been sent). */
  get started(): boolean {
    return this.#started;
  }

  /** Pulls one chunk from the source into the buffer; serialised so concurrent reads cannot interleave. */
  #fill(): Promise<void> {
    if (this.#pending) return this.#pending;
    this.#started = true;
    if (this.#onFirstRead) {
      const f = this.#onFirstRead;
      this.#onFirstRead = undefined;
      f();
    }
    const p = this.#source.next().then(
      (chunk) => {
        this.#pending = undefined;
        if (chunk === null) {
          // A transport whose body ends short of Content-Length must not pass for a complete body.
          if (this.#received < this.#length && this.#length !== Infinity) {
            this.#error = new ClientDisconnectedError(
              `request body ended after ${this.#received} of ${this.#length} bytes`,
            );
            throw this.#error;
          }
          this.#eof = true;
          return;
        }
        this.#received += chunk.length;
        if (this.#received > this.#limit) {
          this.#error = new RequestBodyTooLargeError(this.#limit);
          this.#source.cancel?.();
          throw this.#error;
        }
        if (chunk.length > 0) {
          this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
          this.#buffered += chunk.length;
        }
        if (this.#received >= this.#length) this.#eof = true;
      },
      (err: unknown) => {
        this.#pending = undefined;
        this.#error = err;
        throw err;
      },
    );
    this.#pending = p;
    return p;
  }

  #take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length === n) {
      this.#chunks.shift();
      out = first;
    } else if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      out = first.subarray(0, n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.#chunks[0]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#buffered -= n;
    return out;
  }

  async read(size?: number | null): Promise<Bytes> {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the body source's own failure, as it came
    if (this.#error !== undefined) throw this.#error;
    const all = size === undefined || size === null || size < 0;
    if (!all && !Number.isInteger(size)) {
      throw new TypeError(`wsgi.input.read(size): size must be an integer, got ${String(size)}`);
    }
    const want = all ? Infinity : size;
    while (this.#buffered < want && !this.#eof) await this.#fill();
    return this.#take(Math.min(want, this.#buffered));
  }

  async readline(size?: number | null): Promise<Bytes> {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the body source's own failure, as it came
    if (this.#error !== undefined) throw this.#error;
    const max = size === undefined || size === null || size < 0 ? Infinity : size;
    let scanned = 0;
    for (;;) {
      // Look for '\n' in the buffered chunks, starting where the previous scan stopped.
      let pos = 0;
      for (const c of this.#chunks) {
        if (pos + c.length > scanned) {
          const idx = c.indexOf(0x0a, Math.max(0, scanned - pos));
          if (idx !== -1) return this.#take(Math.min(pos + idx + 1, max));
        }
        pos += c.length;
      }
      scanned = pos;
      if (this.#buffered >= max || this.#eof) return this.#take(Math.min(this.#buffered, max));
      await this.#fill();
    }
  }

  async readlines(hint?: number | null): Promise<Bytes[]> {
    const lines: Bytes[] = [];
    const limit = hint === undefined || hint === null || hint <= 0 ? Infinity : hint;
    let total = 0;
    for (;;) {
      const line = await this.readline();
      if (line.length === 0) return lines;
      lines.push(line);
      total += line.length;
      if (total >= limit) return lines;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Bytes> {
    for (;;) {
      const line = await this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }
}
