/**
 * `fromNodeListener(listener)`: a `(req, res)` listener — a whole Express app, say — as an nsgi app.
 * The listener gets a real IncomingMessage whose body streams from `wsgi.input` and a real
 * ServerResponse whose writeHead/write/end feed `startResponse` and the body the server iterates,
 * with backpressure ('drain') and 'finish'/'close' as on a socket. Nothing is buffered whole.
 */

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
    this.remoteAddress = environ.REMOTE_ADDR as string | undefined;
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
  for (const [name, value] of environ['nsgi.raw_headers']) {
    raw.push(name, value);
    const key = name.toLowerCase();
    const v = value.trim();
    const prev = headers[key];
    // Node's own joining rules for IncomingMessage.headers.
    if (key === 'set-cookie') headers[key] = [...((prev as string[] | undefined) ?? []), v];
    else if (prev === undefined) headers[key] = v;
    else if (key === 'cookie') headers[key] = `${prev as string}; ${v}`;
    else if (key === 'host' || key === 'content-type' || key === 'content-length' || key === 'authorization' || key === 'user-agent') continue;
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

export function fromNodeListener(listener: NodeRequestListener): App {
  if (typeof listener !== 'function') throw new TypeError('fromNodeListener(listener): give a (req, res) function, e.g. an Express app');
  return (environ, startResponse: StartResponse) =>
    new Promise<Body>((resolve, reject) => {
      const queue: Chunk[] = [];
      let queued = 0;
      let waiting: (() => void) | undefined;
      let ended = false;
      let finished = false;
      let closed = false;
      const wake = () => {
        const w = waiting;
        waiting = undefined;
        w?.();
      };

      const socket = new BridgeSocket(environ, () => closeAll(true));
      const req = new http.IncomingMessage(socket as never);
      const { raw, headers } = requestHeaders(environ);
      req.method = environ.REQUEST_METHOD;
      req.url = relativeTarget(environ);
      req.httpVersion = '1.1';
      req.httpVersionMajor = 1;
      req.httpVersionMinor = 1;
      req.headers = headers;
      req.rawHeaders = raw;
      const input = environ['wsgi.input'];
      let reading = false;
      // IncomingMessage does not ask again after a push (its parser pushes unasked), so this pulls
      // on until the stream is full or the body ends.
      const pull = (): void => {
        if (reading) return;
        reading = true;
        input.read(64 * 1024).then(
          (chunk) => {
            reading = false;
            if (chunk.length === 0) {
              req.complete = true;
              req.push(null);
            } else if (req.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))) {
              pull();
            }
          },
          (err: unknown) => req.destroy(err as Error),
        );
      };
      req._read = pull;
      // A request without a body is complete from the start (the server's input says so).
      if ((input as { complete?: boolean }).complete === true) {
        req.complete = true;
        req.push(null);
      }

      const res = new http.ServerResponse(req);
      res.sendDate = false;
      const state = res as unknown as { _header: string | null; finished: boolean };

      let started = false;
      const start = () => {
        if (started) return;
        started = true;
        // Marks the headers as sent for code that asks (res.headersSent, finalhandler).
        state._header = 'nsgi';
        try {
          startResponse(`${res.statusCode} ${res.statusMessage || STATUS_CODES[res.statusCode] || 'Unknown'}`, responseHeaders(res));
        } catch (err) {
          reject(err);
          return;
        }
        resolve(body);
      };

      const writeHead = (code: number, reason?: unknown, extra?: unknown): ServerResponse => {
        if (started) return res;
        res.statusCode = code;
        let hdrs = extra;
        if (typeof reason === 'string') res.statusMessage = reason;
        else hdrs = reason;
        if (Array.isArray(hdrs)) {
          const flat = Array.isArray(hdrs[0]) ? (hdrs as Array<[string, string]>).flat() : (hdrs as string[]);
          for (let i = 0; i < flat.length; i += 2) res.appendHeader(flat[i]!, flat[i + 1]!);
        } else if (hdrs !== null && typeof hdrs === 'object') {
          for (const [k, v] of Object.entries(hdrs as Record<string, string | number | string[]>)) res.setHeader(k, v);
        }
        start();
        return res;
      };
      const toBuffer = (chunk: unknown, encoding?: unknown): Buffer =>
        typeof chunk === 'string' ? Buffer.from(chunk, (typeof encoding === 'string' ? encoding : 'utf8') as BufferEncoding) : Buffer.from(chunk as Uint8Array);
      const write = (chunk: unknown, encoding?: unknown, cb?: unknown): boolean => {
        const callback = typeof encoding === 'function' ? encoding : cb;
        if (ended) {
          (callback as ((e?: Error) => void) | undefined)?.(new Error('write after end'));
          return false;
        }
        start();
        const buf = toBuffer(chunk, encoding);
        if (buf.length > 0 && req.method !== 'HEAD') {
          queue.push(buf);
          queued += buf.length;
          wake();
        }
        if (typeof callback === 'function') queueMicrotask(() => (callback as () => void)());
        return queued < HIGH_WATER;
      };
      const end = (chunk?: unknown, encoding?: unknown, cb?: unknown): ServerResponse => {
        if (typeof chunk === 'function') [cb, chunk] = [chunk, undefined];
        else if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
        if (ended) return res;
        if (chunk !== undefined && chunk !== null) write(chunk, encoding);
        ended = true;
        state.finished = true;
        start();
        queue.push(null);
        wake();
        if (typeof cb === 'function') res.once('finish', cb as () => void);
        return res;
      };

      Object.assign(res, {
        writeHead,
        write,
        end,
        flushHeaders: () => start(),
        destroy: (err?: Error) => {
          socket.destroy();
          if (err !== undefined) res.emit('error', err);
          return res;
        },
      });
      Object.defineProperty(res, 'writableNeedDrain', { get: () => queued >= HIGH_WATER });
      Object.defineProperty(res, 'writableLength', { get: () => queued });
      Object.defineProperty(res, 'writableFinished', { get: () => finished });

      /** Ends the exchange once: 'finish' when the whole body was taken, 'close' always. */
      const closeAll = (early: boolean) => {
        if (closed) return;
        closed = true;
        if (early && !finished) {
          (req as unknown as { aborted: boolean }).aborted = true;
          // The error (and its stack) only when there is a request body left to fail.
          if (!req.complete) req.destroy(new ClientDisconnectedError('the response ended before the request body was read'));
        }
        queueMicrotask(() => {
          res.emit('close');
          if (!req.destroyed) req.emit('close');
        });
        wake();
      };

      const body: Body = {
        async *[Symbol.asyncIterator]() {
          for (;;) {
            if (queue.length === 0) {
              if (closed) return;
              await new Promise<void>((r) => (waiting = r));
              continue;
            }
            const chunk = queue.shift()!;
            if (chunk === null) {
              finished = true;
              res.emit('prefinish');
              res.emit('finish');
              return;
            }
            const before = queued;
            queued -= chunk.length;
            if (before >= HIGH_WATER && queued < HIGH_WATER) res.emit('drain');
            yield chunk;
          }
        },
        close: () => closeAll(!finished),
      };

      try {
        listener(req, res);
      } catch (err) {
        reject(err);
        return;
      }
      // Once the response has started, the server's close() of the body reports a client gone. A
      // listener still working on its answer hears of it through nsgi.signal (made only then: an
      // AbortSignal per request is a cost of its own).
      if (!started) environ['nsgi.signal'].addEventListener('abort', () => closeAll(true), { once: true });
    });
}
