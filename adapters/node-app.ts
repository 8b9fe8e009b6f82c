/**
 * `fromNodeListener(listener)`: a `(req, res)` listener — a whole Express app, say — as an nsgi app.
 * The listener gets a real IncomingMessage whose body streams from `wsgi.input` and a real
 * ServerResponse whose writeHead/write/end feed `startResponse` and the body the server iterates,
 * with backpressure ('drain') and 'finish'/'close' as on a socket. Nothing is buffered whole.
 */

import { bridgedHeaderLines } from '../src/host.js';
import { Buffer } from 'node:buffer';
import { Duplex } from 'node:stream';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { ClientDisconnectedError } from '../src/errors.js';
import { HOP_BY_HOP } from '../src/response-head.js';
import type { App, Body, Environ, ResponseHeaders, StartResponse } from '../src/types.js';
import { relativeTarget } from '../src/uri.js';

export type NodeRequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Response bytes queued for the server before write() returns false. */
const HIGH_WATER = 64 * 1024;

/** Just enough of a socket for code that reads addresses, sets timeouts or destroys it (a stream, so finished() works on it). */
class BridgeSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly encrypted: boolean;
  #onDestroy: () => void;

  constructor(environ: Environ, onDestroy: () => void) {
    super({ read() {}, write: (_chunk, _encoding, cb) => cb() });
    this.remoteAddress = environ.REMOTE_ADDR;
    this.remotePort = environ.REMOTE_PORT === undefined ? undefined : Number(environ.REMOTE_PORT);
    this.localAddress = environ.SERVER_NAME;
    this.localPort = Number(environ.SERVER_PORT);
    this.encrypted = environ['wsgi.url_scheme'] === 'https';
    this.#onDestroy = onDestroy;
  }

  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address: string | undefined; port: number | undefined } {
    return { address: this.localAddress, port: this.localPort };
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.#onDestroy();
    cb(err);
  }
}

function requestHeaders(environ: Environ): { raw: string[]; headers: http.IncomingHttpHeaders } {
  const raw: string[] = [];
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of bridgedHeaderLines(environ)) {
    raw.push(name, value);
    const key = name.toLowerCase();
    const v = value.trim();
    const prev = headers[key];
    // Node's own joining rules for IncomingMessage.headers.
    if (key === 'set-cookie') headers[key] = [...((prev as string[] | undefined) ?? []), v];
    else if (prev === undefined) headers[key] = v;
    else if (key === 'cookie') headers[key] = `${prev as string}; ${v}`;
    else if (
      key === 'host' ||
      key === 'content-type' ||
      key === 'content-length' ||
      key === 'authorization' ||
      key === 'user-agent'
    )
      continue;
    else headers[key] = `${prev as string}, ${v}`;
  }
  return { raw, headers };
}

/** The headers a ServerResponse holds, as a header list with the names as they were set. */
function responseHeaders(res: ServerResponse): ResponseHeaders {
  const out: ResponseHeaders = [];
  for (const name of (res as unknown as { getRawHeaderNames(): string[] }).getRawHeaderNames()) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower === 'date') continue;
    const value = res.getHeader(lower);
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, String(v)]);
    else out.push([name, String(value)]);
  }
  return out;
}

type Chunk = Buffer | null;
type Callback = (err?: Error | null) => void;

/**
 * One request through the listener: the queue of response bytes between the ServerResponse and the
 * body the server iterates, and the once-only ends ('finish' when the body was all taken, 'close'
 * always).
 */
class ListenerExchange {
  readonly req: IncomingMessage;
  readonly res: BridgeResponse;
  readonly socket: BridgeSocket;
  readonly #startResponse: StartResponse;
  readonly #input: Environ['wsgi.input'];
  readonly #head: boolean;
  readonly queue: Chunk[] = [];
  queued = 0;
  #waiting: (() => void) | undefined;
  ended = false;
  finished = false;
  #closed = false;
  started = false;
  #reading = false;
  /** Settles the app's promise of a body when the listener answers after returning. */
  #settle: { resolve(body: Body): void; reject(err: unknown): void } | undefined;
  /** What start() threw before anyone waited for the body. */
  #failure: { err: unknown } | undefined;

  constructor(environ: Environ, startResponse: StartResponse) {
    this.#startResponse = startResponse;
    this.#input = environ['wsgi.input'];
    this.#head = environ.REQUEST_METHOD === 'HEAD';
    this.socket = new BridgeSocket(environ, () => this.closeAll(true));
    const req = new http.IncomingMessage(this.socket as never);
    const { raw, headers } = requestHeaders(environ);
    req.method = environ.REQUEST_METHOD;
    req.url = relativeTarget(environ);
    req.httpVersion = '1.1';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.headers = headers;
    req.rawHeaders = raw;
    req._read = () => this.#pull();
    // A request without a body is complete from the start (the server's input says so).
    if ((this.#input as { complete?: boolean }).complete === true) {
      req.complete = true;
      req.push(null);
    }
    this.req = req;
    this.res = bridgeResponse(req, this);
  }

  /** IncomingMessage does not ask again after a push (its parser pushes unasked): pulls on until full or ended. */
  #pull(): void {
    if (this.#reading) return;
    this.#reading = true;
    const req = this.req;
    this.#input.read(64 * 1024).then(
      (chunk) => {
        this.#reading = false;
        if (chunk.length === 0) {
          req.complete = true;
          req.push(null);
        } else if (req.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))) {
          this.#pull();
        }
      },
      (err: unknown) => req.destroy(err as Error),
    );
  }

  /** The status and headers go to startResponse once, at the first write, end or writeHead. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const res = this.res;
    // Marks the headers as sent for code that asks (res.headersSent, finalhandler).
    (res as unknown as { _header: string | null })._header = 'nsgi';
    try {
      this.#startResponse(
        `${res.statusCode} ${res.statusMessage || STATUS_CODES[res.statusCode] || 'Unknown'}`,
        responseHeaders(res),
      );
    } catch (err) {
      if (this.#settle !== undefined) this.#settle.reject(err);
      else this.#failure = { err };
      return;
    }
    this.#settle?.resolve(this.#body());
  }

  push(buf: Buffer): void {
    if (buf.length === 0 || this.#head) return;
    this.queue.push(buf);
    this.queued += buf.length;
    this.#wake();
  }

  end(): void {
    this.ended = true;
    this.start();
    this.queue.push(null);
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.();
  }

  /** Ends the exchange once: 'close' always; an early end (the client went away) aborts the request. */
  closeAll(early: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    const req = this.req;
    if (early && !this.finished) {
      (req as unknown as { aborted: boolean }).aborted = true;
      // The error (and its stack) only when there is a request body left to fail.
      if (!req.complete)
        req.destroy(new ClientDisconnectedError('the response ended before the request body was read'));
    }
    queueMicrotask(() => {
      this.res.emit('close');
      if (!req.destroyed) req.emit('close');
    });
    this.#wake();
  }

  /** The chunk after `chunk` left the queue: 'drain' when it fell below the mark, 'finish' at the end. */
  #took(chunk: Chunk): void {
    if (chunk === null) {
      this.finished = true;
      this.res.emit('prefinish');
      this.res.emit('finish');
      return;
    }
    const before = this.queued;
    this.queued -= chunk.length;
    if (before >= HIGH_WATER && this.queued < HIGH_WATER) this.res.emit('drain');
  }

  /**
   * The body the server iterates. A response already whole when the listener returned is a
   * synchronous iterable (no promise per chunk); one still being written waits for its bytes.
   */
  #body(): Body {
    const close = (): void => this.closeAll(!this.finished);
    if (this.ended) return { [Symbol.iterator]: () => this.#whole(), close };
    return { [Symbol.asyncIterator]: () => this.#streamed(), close };
  }

  *#whole(): Generator<Buffer> {
    const queue = this.queue;
    for (;;) {
      const chunk = queue.shift()!;
      this.#took(chunk);
      if (chunk === null) return;
      yield chunk;
    }
  }

  async *#streamed(): AsyncGenerator<Buffer> {
    const queue = this.queue;
    for (;;) {
      if (queue.length === 0) {
        if (this.#closed) return;
        await new Promise<void>((r) => (this.#waiting = r));
        continue;
      }
      const chunk = queue.shift()!;
      this.#took(chunk);
      if (chunk === null) return;
      yield chunk;
    }
  }

  /** Runs the listener: the body now when it answered before returning, else a promise of it. */
  run(listener: NodeRequestListener, environ: Environ): Body | Promise<Body> {
    listener(this.req, this.res);
    if (this.#failure !== undefined) throw this.#failure.err;
    if (this.started) return this.#body();
    // Once the response has started, the server's close() of the body reports a client gone. A
    // listener still working on its answer hears of it through nsgi.signal (made only then: an
    // AbortSignal per request is a cost of its own).
    environ['nsgi.signal'].addEventListener('abort', () => this.closeAll(true), { once: true });
    return new Promise<Body>((resolve, reject) => (this.#settle = { resolve, reject }));
  }
}

const toBuffer = (chunk: unknown, encoding?: unknown): Buffer =>
  typeof chunk === 'string'
    ? Buffer.from(chunk, (typeof encoding === 'string' ? encoding : 'utf8') as BufferEncoding)
    : Buffer.from(chunk as Uint8Array);

const EXCHANGE = Symbol('nsgi.exchange');
type BridgeResponse = ServerResponse & { [EXCHANGE]: ListenerExchange };

/**
 * The head goes out through the response's own writeHead, as node:http's implicit header does
 * (`_implicitHeader()`), so middleware that hooks writeHead to add headers at that moment
 * (on-headers: cookie-session, express-session, compression, response-time) sees every path.
 */
function implicitHead(res: BridgeResponse): void {
  if (!res[EXCHANGE].started) (res as unknown as { _implicitHeader(): void })._implicitHeader();
}

/**
 * writeHead/write/end and the rest, feeding the exchange instead of a socket. Own properties of each
 * response, not a subclass: Express swaps the prototype of every response for its own.
 */
const RESPONSE_METHODS = {
  writeHead(this: BridgeResponse, code: number, reason?: unknown, extra?: unknown): BridgeResponse {
    if (this[EXCHANGE].started) return this;
    this.statusCode = code;
    let hdrs = extra;
    if (typeof reason === 'string') this.statusMessage = reason;
    else hdrs = reason;
    if (Array.isArray(hdrs)) {
      const flat = Array.isArray(hdrs[0]) ? (hdrs as Array<[string, string]>).flat() : (hdrs as string[]);
      for (let i = 0; i < flat.length; i += 2) this.appendHeader(flat[i]!, flat[i + 1]!);
    } else if (hdrs !== null && typeof hdrs === 'object') {
      for (const k of Object.keys(hdrs)) this.setHeader(k, (hdrs as Record<string, string | number | string[]>)[k]!);
    }
    this[EXCHANGE].start();
    return this;
  },

  write(this: BridgeResponse, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    const callback = (typeof encoding === 'function' ? encoding : cb) as Callback | undefined;
    const x = this[EXCHANGE];
    if (x.ended) {
      callback?.(new Error('write after end'));
      return false;
    }
    implicitHead(this);
    x.push(toBuffer(chunk, encoding));
    if (typeof callback === 'function') queueMicrotask(() => callback());
    return x.queued < HIGH_WATER;
  },

  end(this: BridgeResponse, chunk?: unknown, encoding?: unknown, cb?: unknown): BridgeResponse {
    if (typeof chunk === 'function') [cb, chunk] = [chunk, undefined];
    else if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
    const x = this[EXCHANGE];
    if (x.ended) return this;
    // Our own write, not this.write: node:http's end() does not call a write that middleware replaced.
    if (chunk !== undefined && chunk !== null) RESPONSE_METHODS.write.call(this, chunk, encoding);
    implicitHead(this);
    (this as unknown as { finished: boolean }).finished = true;
    x.end();
    if (typeof cb === 'function') this.once('finish', cb as () => void);
    return this;
  },

  flushHeaders(this: BridgeResponse): void {
    implicitHead(this);
  },

  destroy(this: BridgeResponse, err?: Error): BridgeResponse {
    this[EXCHANGE].socket.destroy();
    if (err !== undefined) this.emit('error', err);
    return this;
  },
};

const RESPONSE_STATE: PropertyDescriptorMap = {
  writableNeedDrain: {
    get(this: BridgeResponse) {
      return this[EXCHANGE].queued >= HIGH_WATER;
    },
  },
  writableLength: {
    get(this: BridgeResponse) {
      return this[EXCHANGE].queued;
    },
  },
  writableFinished: {
    get(this: BridgeResponse) {
      return this[EXCHANGE].finished;
    },
  },
};

function bridgeResponse(req: IncomingMessage, exchange: ListenerExchange): BridgeResponse {
  const res = new http.ServerResponse(req) as BridgeResponse;
  res[EXCHANGE] = exchange;
  res.sendDate = false;
  Object.assign(res, RESPONSE_METHODS);
  Object.defineProperties(res, RESPONSE_STATE);
  return res;
}

export function fromNodeListener(listener: NodeRequestListener): App {
  if (typeof listener !== 'function')
    throw new TypeError('fromNodeListener(listener): give a (req, res) function, e.g. an Express app');
  return (environ, startResponse) => new ListenerExchange(environ, startResponse).run(listener, environ);
}
