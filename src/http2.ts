/**
 * HTTP/2 as a host (SPEC §17): each stream of a node:http2 session is one request through the core.
 * Framing, flow control and HPACK are node:http2's; this file only describes a stream's request and
 * writes its response. The bundled server hands it the TLS connections where ALPN picked `h2`,
 * createNodeServer its own.
 */

import http2, {
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Duplex } from 'node:stream';
import { RequestAbort } from './abort.js';
import { drained } from './drain.js';
import type { RequestInfo } from './environ.js';
import { ClientDisconnectedError } from './errors.js';
import type { Framing, Gateway, ResponseSink } from './gateway.js';
import { CLOSE_LINGER_MS, describeRequest, peersOf } from './host.js';
import type { BodySource } from './input.js';
import type { Bytes, ResponseHeaders } from './types.js';

const NOTHING = new Uint8Array(0);
/** Destroying a stream with an error resets it with INTERNAL_ERROR, without ending it first. */
const DROPPED = new Error('nsgi: the response was dropped');

/** The request and response of one stream: the core's abort state, body source and sink. */
export class H2Exchange extends RequestAbort implements BodySource, ResponseSink {
  readonly #stream: ServerHttp2Stream;
  /** The response has ended or was reset. */
  #done = false;

  constructor(stream: ServerHttp2Stream) {
    super();
    this.#stream = stream;
  }

  protected override startWatching(): void {
    const stream = this.#stream;
    if (stream.destroyed) {
      if (!this.#done) this.abort(new ClientDisconnectedError());
      return;
    }
    // A client's RST_STREAM, or the session going away, closes the stream before the response ended.
    stream.once('close', () => {
      if (!this.#done || !stream.writableFinished) this.abort(new ClientDisconnectedError());
    });
  }

  // BodySource

  next(): Promise<Bytes | null> {
    return pullStream(this.#stream);
  }

  sendContinue(): void {
    const stream = this.#stream;
    if (!stream.headersSent && !stream.destroyed) stream.additionalHeaders({ ':status': 100 });
  }

  // ResponseSink: no reason phrase and no connection framing in HTTP/2 (SPEC §17.2).

  head(code: number, _reason: string, headers: ResponseHeaders, framing: Framing): void {
    const stream = this.#stream;
    if (stream.destroyed) return;
    stream.respond(responseHeaders(code, headers), { endStream: framing.noBody });
    if (framing.noBody) this.#done = true;
  }

  write(chunk: Bytes): boolean {
    const stream = this.#stream;
    if (stream.destroyed) return true;
    return stream.write(chunk);
  }

  drain(): Promise<void> {
    return drained(this.#stream);
  }

  end(_reuse: boolean, last?: Bytes): void {
    // An unread request body needs nothing here: node:http2 resets the stream with NO_ERROR once
    // the response has ended (RFC 9113 §8.1), and the session carries on.
    const stream = this.#stream;
    const ended = this.#done;
    this.#done = true;
    if (ended || stream.destroyed) return;
    if (last === undefined || last.length === 0) stream.end();
    else stream.end(last);
  }

  abortResponse(): void {
    this.#done = true;
    const stream = this.#stream;
    if (stream.destroyed) return;
    // What was written goes out first (a write's callback comes once its bytes are on the socket),
    // then the reset: the response is never ended, so the client cannot take it for whole. A client
    // that does not read gets the reset after CLOSE_LINGER_MS.
    // (close(code) would end the stream first, and a client would take the response for whole.)
    const reset = (): void => {
      clearTimeout(timer);
      if (!stream.destroyed) stream.destroy(DROPPED);
    };
    const timer = setTimeout(reset, CLOSE_LINGER_MS).unref();
    stream.write(NOTHING, reset);
  }
}

/** Response headers as node:http2 takes them: lower-case names, a repeated name as an array. */
function responseHeaders(code: number, headers: ResponseHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': code };
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i]!;
    const key = name.toLowerCase();
    const held = out[key];
    if (held === undefined) out[key] = value;
    else if (Array.isArray(held)) held.push(value);
    else out[key] = [String(held), value];
  }
  return out;
}

/** The next chunk of a stream's request body, null at its end; rejects if the stream closed first. */
function pullStream(stream: ServerHttp2Stream): Promise<Bytes | null> {
  const chunk = stream.read() as Buffer | null;
  if (chunk !== null) return Promise.resolve(chunk);
  if (stream.readableEnded) return Promise.resolve(null);
  if (stream.destroyed) return Promise.reject(new ClientDisconnectedError());
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onClose);
    };
    const onReadable = (): void => {
      const c = stream.read() as Buffer | null;
      if (c === null) return; // the end arrives as 'end'
      cleanup();
      resolve(c);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(null);
    };
    const onClose = (): void => {
      cleanup();
      if (stream.readableEnded) resolve(null);
      else reject(new ClientDisconnectedError());
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('close', onClose);
  });
}

/** The regular fields of an HTTP/2 request, `[name, value, ...]`: every pseudo-header left out. */
export function regularFields(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) !== 0x3a) out.push(name, raw[i + 1]!);
  }
  return out;
}

/** The core's description of a stream's request (SPEC §17.1). */
export function describeStream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  exchange: H2Exchange,
  scriptName: string | undefined,
): RequestInfo {
  const method = headers[':method'] ?? 'GET';
  const authority = headers[':authority'];
  // CONNECT has no :path: its authority is its target, which the core refuses as on HTTP/1.1.
  const target = headers[':path'] ?? authority ?? '';
  const info = describeRequest(
    method,
    target,
    '2.0',
    regularFields(rawHeaders),
    peersOf(stream.session!.socket),
    exchange,
    scriptName,
  );
  info.authority = authority;
  // Without Content-Length a body is read to the end of the stream; HEADERS with END_STREAM has none.
  if (!stream.endAfterHeaders && headers['content-length'] === undefined) info.streamed = true;
  // The core sends it on the first read (SPEC §7.3), only to a request that asked for it.
  if (headers.expect !== undefined) info.sendContinue = () => exchange.sendContinue();
  return info;
}

/** A stream's 'error' (a reset, a protocol error) is reported as its close; it must not be thrown. */
function ignoreStreamError(): void {}

/** Runs one stream through the gateway. */
export function serveStream(
  gateway: Gateway,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  scriptName: string | undefined,
): void {
  stream.on('error', ignoreStreamError);
  const exchange = new H2Exchange(stream);
  gateway.dispatch(describeStream(stream, headers, rawHeaders, exchange, scriptName), exchange);
}

/**
 * HTTP/2 sessions whose streams run through a gateway: give it connections (`accept()`: TLS ones
 * where ALPN picked `h2`), or listen on `server` for h2c with prior knowledge. Sessions idle for
 * `idleTimeout` ms are closed (GOAWAY).
 */
export class H2Host {
  readonly server: http2.Http2Server;
  readonly #sessions = new Set<ServerHttp2Session>();
  /** Called when the last open session has closed. */
  onEmpty: (() => void) | undefined = undefined;

  constructor(
    gateway: Gateway,
    scriptName: string | undefined,
    idleTimeout: number,
    options: http2.ServerOptions = {},
  ) {
    const server = http2.createServer({
      ...options,
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, ...options.settings },
    });
    server.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) =>
        serveStream(gateway, stream, headers, rawHeaders, scriptName),
    );
    server.on('session', (session: ServerHttp2Session) => {
      this.#sessions.add(session);
      session.once('close', () => {
        this.#sessions.delete(session);
        if (this.#sessions.size === 0) this.onEmpty?.();
      });
      if (idleTimeout > 0) session.setTimeout(idleTimeout, () => session.close());
    });
    this.server = server;
  }

  /** Sessions open now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Serves HTTP/2 on a connection: a TLS socket that negotiated `h2`, or a plain one (h2c). */
  accept(socket: Duplex): void {
    this.server.emit('connection', socket);
  }

  /** Graceful shutdown: GOAWAY to every session; streams in progress finish, no new ones start. */
  close(): void {
    for (const session of this.#sessions) session.close();
  }

  /** Drops every session now; streams in progress are reset (their `nsgi.signal` fires). */
  destroy(): void {
    for (const session of this.#sessions) session.destroy();
  }
}

/** Streams a client may have open at once on a session (node:http2 sets no limit; nginx's is 128). */
const MAX_CONCURRENT_STREAMS = 100;

/** ALPN protocols a TLS server offers when it serves HTTP/2 beside HTTP/1.1, in preference order. */
export const ALPN_H2_H1 = ['h2', 'http/1.1'];
