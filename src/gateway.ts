/**
 * The gateway core: runs an app for one request against a response sink. It owns every rule of
 * the interface (start_response, excInfo, lazy headers, framing, HEAD/204/304, backpressure, abort,
 * close()); transports only describe the request and carry bytes.
 */

import { performance } from 'node:perf_hooks';
import { Buffer } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import { detachAbort } from './abort.js';
import { toApp } from './app-forms.js';
import {
  buildEnviron,
  compileEnvironOptions,
  type CompiledEnvironOptions,
  type EnvironOptions,
  type RequestInfo,
  type BuiltEnviron,
} from './environ.js';
import { ClientDisconnectedError, HttpError, InterfaceError } from './errors.js';
import { formatError, TextErrorStream, type TextSink } from './error-stream.js';
import { parseResponseHead, type ResponseHead } from './response-head.js';
import type {
  App,
  AppLike,
  Body,
  Bytes,
  Environ,
  ResponseHeader,
  ResponseHeaders,
  StartResponse,
  WriteFn,
} from './types.js';
import { describeValue } from './describe.js';
import {
  Offer,
  WebSocketHub,
  websocketSettings,
  type OfferOwner,
  type Socket as WebSocket,
  type UpgradeSource,
  type WebSocketOptions,
} from './websocket.js';
import { isThenable } from './thenable.js';
import { targetPath } from './uri.js';

/** How the transport must frame the response body; decided by the core. */
export interface Framing {
  /** The Content-Length header that was sent (the app's, or one the core computed), if any. */
  contentLength: number | undefined;
  /** Use chunked transfer coding. */
  chunked: boolean;
  /** No body may follow the headers (HEAD, 204, 304). */
  noBody: boolean;
  /** Close the connection after this response. */
  close: boolean;
}

/** Where the core writes a response. One sink per request; each transport implements it. */
export interface ResponseSink {
  /** Sends the status line and headers. Called at most once. */
  head(code: number, reason: string, headers: ResponseHeaders, framing: Framing): void;
  /** Sends body bytes. Returns false when the transport is full: await drain() before writing more. */
  write(chunk: Bytes): boolean;
  /** Resolves when the transport can take more bytes, or when the connection is gone. */
  drain(): Promise<void>;
  /** Completes the response, sending `last` first. `reuse: false` closes the connection after flushing. */
  end(reuse: boolean, last?: Bytes): void;
  /** Drops the response: what was written is flushed, then the connection closes without completing it. */
  abortResponse(): void;
  /**
   * Optional, for hosts that can pass a request on (Express's `next()`): offered, before anything is
   * sent, an app error (`err`) or the app's 404 (no argument). Returns true when the host took the
   * request over; the core then sends nothing more and only finishes the app (close()).
   */
  decline?(err?: unknown): boolean;
}

/** One line of what happened, for access logs and metrics. */
export interface ResponseRecord {
  environ: Environ | undefined;
  method: string;
  target: string;
  httpVersion: string;
  remoteAddress: string | undefined;
  /** The status sent, or 0 when the connection was dropped before any. */
  status: number;
  /** Body bytes handed to the transport. */
  bytes: number;
  durationMs: number;
  /** True when the client went away or the connection was aborted before the response completed. */
  aborted: boolean;
}

export interface GatewayOptions extends Omit<EnvironOptions, 'errors'> {
  /** Where `wsgi.errors` and the gateway's own error reports go. Default: process.stderr. */
  errorLog?: TextSink | undefined;
  /** Unread request body left after the response that is drained rather than closing the connection. Default 1 MiB. */
  maxDrain?: number | undefined;
  /** WebSocket limits and liveness (SPEC §16.4). */
  websocket?: WebSocketOptions | undefined;
  /** Called once per request after close() has run. */
  onResponse?: ((record: ResponseRecord) => void) | undefined;
  /** A path the gateway answers itself, before the app: 200 while serving, 503 once draining (SPEC §11.1). */
  healthPath?: string | undefined;
  /** Also draining while this returns true (a process manager's stop, before the server's close()). */
  draining?: (() => boolean) | undefined;
}

const DEFAULT_MAX_DRAIN = 1024 * 1024;

/** What access logs and error reports say about a request. */
export type RequestSummary = Pick<RequestInfo, 'method' | 'target' | 'httpVersion' | 'remoteAddress'>;

/** What a gateway's requests share: the app and the options, compiled once. */
interface Core {
  readonly app: App;
  readonly env: CompiledEnvironOptions;
  readonly maxDrain: number;
  readonly onResponse: ((record: ResponseRecord) => void) | undefined;
  readonly websockets: WebSocketHub;
  readonly healthPath: string | undefined;
  readonly draining: (() => boolean) | undefined;
}

/** The core, configured once per server; `handle()` runs one request. */
export class Gateway {
  readonly app: App;
  readonly #core: Core;

  constructor(app: AppLike, options: GatewayOptions = {}) {
    this.app = toApp(app);
    const maxDrain = options.maxDrain ?? DEFAULT_MAX_DRAIN;
    if (!(maxDrain >= 0))
      throw new RangeError(`maxDrain must be a number of bytes >= 0, got ${String(options.maxDrain)}`);
    this.#core = {
      app: this.app,
      env: compileEnvironOptions({ ...options, errors: new TextErrorStream(options.errorLog ?? process.stderr) }),
      maxDrain,
      onResponse: options.onResponse,
      websockets: new WebSocketHub(websocketSettings(options.websocket)),
      healthPath: checkHealthPath(options.healthPath),
      draining: options.draining,
    };
  }

  #draining = false;

  /** A graceful stop has begun: the health path answers 503 from now on (SPEC §11.1). */
  drain(): void {
    this.#draining = true;
  }

  get draining(): boolean {
    return this.#draining || this.#core.draining?.() === true;
  }

  /**
   * Graceful shutdown of the WebSockets: each open one gets close code 1001, and those still open
   * after `grace` ms are dropped; later handshakes are refused. Resolves once all are closed.
   */
  closeWebSockets(grace: number): Promise<void> {
    return this.#core.websockets.shutdown(grace);
  }

  /**
   * Runs the app for one request. Returns undefined when the response completed synchronously, else
   * a promise that never rejects: every failure becomes a response or an abort, and a fault of nsgi
   * itself a log line and a dropped response.
   */
  handle(req: RequestInfo, sink: ResponseSink): Promise<void> | undefined {
    const core = this.#core;
    const start = core.onResponse === undefined ? 0 : performance.now();
    if (core.healthPath !== undefined && targetPath(req.target) === core.healthPath) {
      // A 503 closes the connection, and so does a body the answer leaves unread.
      const draining = this.draining;
      const close = draining || mayHaveBody(req.rawHeaders);
      const status = sendPlain(sink, draining ? 503 : 200, req.method === 'HEAD', close, undefined, NO_STORE);
      record(core, undefined, req, status, 0, start, false);
      return undefined;
    }
    if (req.sendContinue !== undefined) return continueRun(core, req, sink, start);
    const built = build(core, req, req, sink, start);
    return built === undefined ? undefined : new RequestRun(core, built, req, sink, start).run();
  }

  /** Writes one line of the server's own (not about a request) to the error log. */
  log(message: string): void {
    this.#core.env.errors.write(`nsgi: ${message}\n`);
  }

  /** Runs one request without waiting for it (what hosts call). */
  dispatch(req: RequestInfo, sink: ResponseSink): void {
    void this.handle(req, sink);
  }

  /**
   * Answers a request the transport refused before it could be described (a malformed request line
   * or header section): a short text/plain response with `err.status`, logged like any other.
   */
  refuse(req: RequestSummary, sink: ResponseSink, err: HttpError): void {
    const core = this.#core;
    const start = core.onResponse === undefined ? 0 : performance.now();
    const status = sendPlain(sink, err.status, req.method === 'HEAD', true, err.message, err.headers);
    record(core, undefined, req, status, 0, start, false);
  }
}

/**
 * The request as the environ builder sees it when the host defers `100 Continue` to the core: its
 * sendContinue sends nothing once the response has started, where a 100 would land inside it.
 */
class ContinueGuard {
  run: RequestRun | undefined = undefined;
  readonly info: RequestInfo;

  constructor(req: RequestInfo, send: () => void) {
    this.info = {
      ...req,
      sendContinue: () => {
        if (this.run?.responseStarted !== true) send();
      },
    };
  }
}

/** The environ for `info` (the request `req` as the builder sees it), or undefined once a refusal is answered. */
function build(
  core: Core,
  info: RequestInfo,
  req: RequestInfo,
  sink: ResponseSink,
  start: number,
): BuiltEnviron | undefined {
  try {
    return buildEnviron(info, core.env);
  } catch (err) {
    refuseRequest(core, req, sink, err, start);
    return undefined;
  }
}

/** Gateway.handle() for a request whose `100 Continue` the host leaves to the core. */
function continueRun(core: Core, req: RequestInfo, sink: ResponseSink, start: number): Promise<void> | undefined {
  const guard = new ContinueGuard(req, req.sendContinue!);
  const built = build(core, guard.info, req, sink, start);
  if (built === undefined) return undefined;
  const run = new RequestRun(core, built, req, sink, start);
  guard.run = run;
  return run.run();
}

const NO_STORE: ResponseHeaders = [['Cache-Control', 'no-store']];

function checkHealthPath(path: string | undefined): string | undefined {
  if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/') || path.includes('?')))
    throw new TypeError(`healthPath must be a path starting with /, e.g. '/healthz'; got ${JSON.stringify(path)}`);
  return path;
}

/** Answers a request buildEnviron() refused: its HttpError, or 500 for a fault in nsgi itself. */
function refuseRequest(core: Core, req: RequestInfo, sink: ResponseSink, err: unknown, start: number): void {
  let status: number;
  if (err instanceof HttpError) {
    // A refused handshake closes as one the app refuses does (SPEC §16.2), on every host alike.
    const close =
      err.closeConnection || mayHaveBody(req.rawHeaders) || (req.upgrade !== undefined && asksUpgrade(req.rawHeaders));
    status = sendPlain(sink, err.status, req.method === 'HEAD', close, err.message, err.headers);
  } else {
    // A fault in nsgi itself (or a throwing trustProxy function): answer, never crash the server.
    report(core, undefined, req, 'internal error while reading the request', err);
    status = sendPlain(sink, 500, req.method === 'HEAD', true);
  }
  record(core, undefined, req, status, 0, start, false);
}

/** Writes a line about a request to its wsgi.errors (or the gateway's error log). */
function report(core: Core, environ: Environ | undefined, req: RequestSummary, what: string, err?: unknown): void {
  const line = `nsgi: ${what} (${req.method} ${req.target.slice(0, 200)})${err === undefined ? '' : `: ${formatError(err)}`}\n`;
  (environ?.['wsgi.errors'] ?? core.env.errors).write(line);
}

/** Reports a finished request to the onResponse hook. */
function record(
  core: Core,
  environ: Environ | undefined,
  req: RequestSummary,
  status: number,
  bytes: number,
  start: number,
  aborted: boolean,
): void {
  if (core.onResponse === undefined) return;
  try {
    core.onResponse({
      environ,
      method: req.method,
      target: req.target,
      httpVersion: req.httpVersion,
      remoteAddress: environ?.REMOTE_ADDR ?? req.remoteAddress,
      status,
      bytes,
      durationMs: performance.now() - start,
      aborted,
    });
  } catch (err) {
    report(core, environ, req, 'onResponse hook threw', err);
  }
}

/** True when a refused request may still have body bytes on the connection. */
function mayHaveBody(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'transfer-encoding' || (name === 'content-length' && raw[i + 1]!.trim() !== '0')) return true;
  }
  return false;
}

/** True when the request carries an Upgrade field. */
function asksUpgrade(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'upgrade') return true;
  return false;
}

/**
 * Sends a short text/plain answer from the server itself; returns the status sent. `detail` (for
 * requests the server refused) tells the client what was wrong; app errors never reach the client.
 */
function sendPlain(
  sink: ResponseSink,
  code: number,
  head: boolean,
  close: boolean,
  detail?: string,
  extra?: ResponseHeaders,
): number {
  const reason = STATUS_CODES[code] ?? 'Error';
  const body = Buffer.from(detail === undefined ? `${reason}\n` : `${reason}: ${detail}\n`, 'latin1');
  const headers: ResponseHeaders = [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(body.length)],
  ];
  if (extra !== undefined) headers.push(...extra);
  try {
    sink.head(code, reason, headers, { contentLength: body.length, chunked: false, noBody: head, close });
    sink.end(!close, head ? undefined : body);
  } catch {
    sink.abortResponse();
  }
  return code;
}

function checkBody(body: unknown): asserts body is Body {
  if (Array.isArray(body)) return;
  if (
    body === null ||
    body === undefined ||
    typeof body === 'string' ||
    body instanceof Uint8Array ||
    (typeof body !== 'object' && typeof body !== 'function') ||
    (typeof (body as Iterable<Bytes>)[Symbol.iterator] !== 'function' &&
      typeof (body as AsyncIterable<Bytes>)[Symbol.asyncIterator] !== 'function')
  ) {
    throw new InterfaceError(
      'ERR_NSGI_INVALID_BODY',
      `the app returned ${body instanceof Uint8Array ? `a bare ${describeValue(body).slice(2)}` : describeValue(body)}; return an iterable of Uint8Array chunks, ` +
        `e.g. [Buffer.from('text')], a generator, or [] when the body is empty`,
    );
  }
}

function badChunk(v: unknown, index: number): InterfaceError {
  const hint = typeof v === 'string' ? ` (encode it: Buffer.from(${JSON.stringify(v.slice(0, 20))}))` : '';
  return new InterfaceError(
    'ERR_NSGI_INVALID_CHUNK',
    `the body yielded ${describeValue(v)} as chunk ${index}; every chunk must be a Uint8Array${hint}`,
  );
}

const NOT_STARTED = 'ERR_NSGI_NO_START_RESPONSE';
const WS_CLOSED = 3;

function bytesAfterAccept(): InterfaceError {
  return new InterfaceError(
    'ERR_NSGI_BODY_AFTER_ACCEPT',
    'the app returned body bytes after nsgi.websocket.accept(); return [] and send over the socket',
  );
}
/** The sink of a run whose connection a WebSocket took over: the run sends nothing more in HTTP. */
const RELEASED_SINK: ResponseSink = {
  head() {},
  write: () => true,
  drain: () => Promise.resolve(),
  end() {},
  abortResponse() {},
};
const DECLINED: Framing = Object.freeze({ contentLength: undefined, chunked: false, noBody: true, close: false });

/** Where a RequestRun's response stands; each phase only moves forward, but for excInfo (§6.2). */
const enum Phase {
  /** start_response not called yet. */
  Unstarted,
  /** start_response threw: nothing can be sent until it is called again with excInfo. */
  StartFailed,
  /** Status and headers stored, nothing sent. */
  Stored,
  /** The head went to the host. */
  Sent,
  /** The host took the request over (Express's next()): nothing more is sent. */
  Declined,
  /** The app accepted a WebSocket (SPEC §16): the connection is the socket's, no HTTP response follows. */
  Upgraded,
}

/** One run of the app for one request: start_response, the body, framing, abort and close(). */
class RequestRun implements OfferOwner {
  readonly #core: Core;
  readonly #environ: Environ;
  /** The body stream and what the request head said about the body; let go once a WebSocket has opened. */
  #built: BuiltEnviron | undefined;
  /** The request; only its summary, for the log and the record, once a WebSocket has opened. */
  #req: RequestSummary;
  /** The host's sink; released once a WebSocket has opened, as the run lives as long as the socket. */
  #sink: ResponseSink;
  readonly #start: number;
  #abortState: RequestInfo['abort'];
  readonly #http11: boolean;
  readonly #head: boolean;

  // Every field is set in the constructor, none by an initializer: V8 did not inline the
  // initializers' function, which cost a call and a write barrier per field (bench/NOTES.md).
  #phase: Phase;
  /** The status and headers start_response stored (while #phase is Stored). */
  #stored: ResponseHead | null;
  #framing: Framing | undefined;
  #status: number;
  #written: number;
  #limit: number;
  /** The response was dropped (the client left, or the app failed after the head went out). */
  #aborted: boolean;
  /** The accepted WebSocket, once the app accepted one. */
  #socket: WebSocket | undefined;
  /** The body has ended and close() was called; with a WebSocket, the record waits for it to close too. */
  #bodyEnded: boolean;
  /** The PEP's write(), made by the first start_response() call. */
  #writeFn: WriteFn | undefined;
  readonly #startResponse: StartResponse;

  /** `start`: performance.now() when the request arrived (0 without an onResponse hook). */
  constructor(core: Core, built: BuiltEnviron, req: RequestInfo, sink: ResponseSink, start: number) {
    this.#core = core;
    this.#environ = built.environ;
    this.#built = built;
    this.#req = req;
    this.#sink = sink;
    this.#start = start;
    this.#abortState = req.abort;
    this.#http11 = req.httpVersion !== '1.0' && req.httpVersion !== '0.9';
    this.#head = req.method === 'HEAD';
    this.#phase = Phase.Unstarted;
    this.#stored = null;
    this.#framing = undefined;
    this.#status = 0;
    this.#written = 0;
    this.#limit = Infinity;
    this.#aborted = false;
    this.#socket = undefined;
    this.#bodyEnded = false;
    this.#writeFn = undefined;
    this.#startResponse = (status, headers, excInfo) => this.#storeHead(status, headers, excInfo);
  }

  /** True once the status line and headers have gone to the transport. */
  get responseStarted(): boolean {
    return this.#phase >= Phase.Sent;
  }

  #storeHead(status: string, headers: ResponseHeaders, excInfo: unknown): WriteFn {
    if (excInfo !== undefined && excInfo !== null) {
      // PEP 3333: once headers are out, re-raise the app's own error (same identity).
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the app's own object, whatever it is
      if (this.#phase >= Phase.Sent) throw excInfo;
    } else if (this.#phase === Phase.Upgraded) {
      throw new InterfaceError(
        'ERR_NSGI_START_AFTER_ACCEPT',
        'start_response() after nsgi.websocket.accept(): the 101 has been sent; return [] and talk over the socket',
      );
    } else if (this.#phase !== Phase.Unstarted) {
      throw new InterfaceError(
        'ERR_NSGI_START_RESPONSE_TWICE',
        'start_response() was called a second time without excInfo; call it again only from an error handler, ' +
          'passing the caught error as the third argument',
      );
    }
    this.#phase = Phase.StartFailed;
    this.#stored = null;
    this.#stored = parseResponseHead(status, headers);
    this.#phase = Phase.Stored;
    return (this.#writeFn ??= this.#makeWrite());
  }

  /** Apart from #storeHead, so the closure keeps nothing of a start_response() call alive. */
  #makeWrite(): WriteFn {
    return (data) => this.#write(data);
  }

  /** The PEP's write(): sends the headers if needed, then the bytes, resolving once the transport took them. */
  async #write(data: Bytes): Promise<void> {
    if (!(data instanceof Uint8Array)) {
      throw new InterfaceError(
        'ERR_NSGI_INVALID_CHUNK',
        `write() takes a Uint8Array, got ${describeValue(data)}${typeof data === 'string' ? '; encode it with Buffer.from()' : ''}`,
      );
    }
    this.#ready();
    this.#abortState.watch();
    if (this.#abortState.aborted) throw new ClientDisconnectedError('client disconnected; write() cannot send');
    if (this.#phase < Phase.Sent) this.#commit(undefined);
    if (data.length > 0 && !this.#framing!.noBody) await this.#send(data);
  }

  /** Throws unless a valid start_response() call is on record. */
  #ready(): void {
    const phase = this.#phase;
    if (phase === Phase.Unstarted) {
      throw new InterfaceError(
        NOT_STARTED,
        'the app sent body data before calling start_response(); call startResponse(status, headers) first',
      );
    }
    if (phase === Phase.StartFailed) {
      throw new InterfaceError(
        'ERR_NSGI_START_RESPONSE_FAILED',
        'start_response() raised and was not called again with excInfo; nothing can be sent',
      );
    }
  }

  /** Commits the stored status and headers. `knownLength` is the whole body's length when it is known. */
  #commit(knownLength: number | undefined): void {
    const head = this.#stored!;
    const code = head.code;
    if (code === 404 && this.#sink.decline !== undefined && this.#sink.decline()) {
      this.#decline();
      return;
    }
    const noBody = this.#head || code === 204 || code === 304;
    let headers = head.headers;
    let contentLength = head.contentLength;
    if (code === 204 && contentLength !== undefined) {
      headers = headers.filter(([n]) => n.toLowerCase() !== 'content-length');
      contentLength = undefined;
    } else if (
      contentLength === undefined &&
      knownLength !== undefined &&
      code !== 204 &&
      code !== 304 &&
      !(this.#head && knownLength === 0)
    ) {
      // A HEAD answered with an empty body says nothing about the GET body's length.
      contentLength = knownLength;
      // A copy: apps often reuse one constant header list for every response. (A plain loop: the
      // spread form costs noticeably more on this path.)
      const n = headers.length;
      const copy: ResponseHeaders = new Array<ResponseHeader>(n + 1);
      for (let i = 0; i < n; i++) copy[i] = headers[i]!;
      copy[n] = ['Content-Length', String(knownLength)];
      headers = copy;
    }
    if (contentLength !== undefined && !noBody) this.#limit = contentLength;
    const chunked = !noBody && contentLength === undefined && this.#http11;
    const close = (!noBody && contentLength === undefined && !this.#http11) || this.#mustClose();
    this.#framing = { contentLength, chunked, noBody, close };
    this.#phase = Phase.Sent;
    this.#status = code;
    this.#sink.head(code, head.reason, headers, this.#framing);
  }

  /**
   * True when unread request body is too large (or of unknown size) to drain after the response, or
   * when the client is still waiting for a 100 Continue that never came: it may send the body after
   * this response, where it would be read as the next request.
   */
  #mustClose(): boolean {
    const built = this.#built;
    // A handshake answered in HTTP: on node:http its connection has left the HTTP parser (SPEC §16.2).
    if (built === undefined || built.websocket !== undefined) return true;
    const { input, bodyLength, expectsContinue } = built;
    if (input.complete) return false;
    if (bodyLength === 0) return false;
    // The 100 Continue is ours to send (the host defers it to us) and was never sent.
    if (expectsContinue && !input.started) return true;
    if (bodyLength === null) return true;
    return bodyLength - input.bytesReceived > this.#core.maxDrain;
  }

  /** Sends bytes within the Content-Length; returns a promise only when the transport is full. */
  #send(chunk: Bytes): Promise<void> | undefined {
    const room = this.#limit - this.#written;
    if (room <= 0) return undefined;
    if (chunk.length > room) chunk = chunk.subarray(0, room);
    this.#written += chunk.length;
    if (this.#sink.write(chunk)) return undefined;
    return this.#sink.drain();
  }

  /**
   * Runs the exchange. A synchronous app returning an Array completes without a single await (the
   * common case, and the one benchmarks measure); a promise continues in #settle(), a body that is
   * not an Array (or comes after write()) in #iterate().
   */
  run(): Promise<void> | undefined {
    let result: unknown;
    const upgrade = this.#built?.websocket;
    if (upgrade !== undefined) this.#offerWebSocket(upgrade);
    try {
      result = this.#core.app(this.#environ, this.#startResponse);
    } catch (err) {
      this.#fail(err);
      return this.#guard(this.#close(undefined, undefined, true));
    }
    if (isThenable(result)) return this.#settle(result);
    return this.#guard(this.#runBody(result));
  }

  /**
   * The run's promise never rejects: a rejection here is a fault of nsgi itself (the app's errors
   * are answered or logged before), so it is logged and the response dropped.
   */
  #guard(p: Promise<void> | undefined): Promise<void> | undefined {
    return p === undefined ? undefined : p.then(undefined, (err: unknown) => this.#internalError(err));
  }

  #internalError(err: unknown): void {
    process.stderr.write(`nsgi: internal error: ${String((err as Error)?.stack ?? err)}\n`);
    this.#sink.abortResponse();
  }

  /**
   * Waits for the app's promise with a reaction rather than a suspended async function: the wait
   * lasts as long as the app runs (a WebSocket app's, as long as its socket), and costs less so.
   * Not raced against abort: the body the app returns must be obtained so close() can be called.
   */
  #settle(result: PromiseLike<unknown>): Promise<void> {
    this.#abortState.watch();
    return Promise.resolve(result).then(
      (body) => this.#settled(true, body),
      (err: unknown) => this.#settled(false, err),
    );
  }

  /** The app's promise settled with a body (`ok`) or an error. Guarded here, not by a chain of its own. */
  #settled(ok: boolean, value: unknown): Promise<void> | undefined {
    try {
      if (ok) return this.#guard(this.#runBody(value));
      this.#fail(value);
      return this.#guard(this.#close(undefined, undefined, true));
    } catch (fault) {
      this.#internalError(fault);
      return undefined;
    }
  }

  /** Sends the body the app returned: an Array at once when it can, anything else chunk by chunk. */
  #runBody(result: unknown): Promise<void> | undefined {
    let body: Body | undefined;
    try {
      checkBody(result);
      body = result;
      if (!Array.isArray(body) || this.#phase >= Phase.Sent) return this.#iterate(body);
      const pending = this.#sendArray(body as unknown[]);
      if (pending !== undefined) return this.#afterPending(pending, body);
    } catch (err) {
      this.#fail(err);
    }
    return this.#close(body, undefined, true);
  }

  async #afterPending(pending: Promise<void>, body: Body): Promise<void> {
    this.#abortState.watch();
    try {
      await pending;
    } catch (err) {
      this.#fail(err);
    }
    const closing = this.#close(body, undefined, true);
    if (closing !== undefined) await closing;
  }

  /** The general path: pulls the body chunk by chunk. */
  async #iterate(body: Body): Promise<void> {
    this.#abortState.watch();
    let iterator: Iterator<Bytes> | AsyncIterator<Bytes> | undefined;
    let finished = false;
    try {
      const asyncIter = (body as AsyncIterable<Bytes>)[Symbol.asyncIterator];
      const isAsync = typeof asyncIter === 'function';
      iterator = isAsync ? asyncIter.call(body) : (body as Iterable<Bytes>)[Symbol.iterator]();
      let index = 0;
      for (;;) {
        if (this.#abortState.aborted) break;
        let step = iterator.next();
        if (isAsync) step = await this.#raceAbort(step as Promise<IteratorResult<Bytes>>);
        const r = step as IteratorResult<Bytes>;
        if (r.done) {
          finished = true;
          break;
        }
        const chunk: unknown = r.value;
        if (!(chunk instanceof Uint8Array)) throw badChunk(chunk, index);
        index++;
        // Empty chunks carry nothing, so middleware may yield them even before start_response.
        if (chunk.length === 0) continue;
        if (this.#phase === Phase.Upgraded) throw bytesAfterAccept();
        this.#ready();
        if (this.#phase < Phase.Sent) this.#commit(undefined);
        if (this.#framing!.noBody) break; // HEAD/204/304: headers are out, the body is not pumped
        const pending = this.#send(chunk);
        if (pending !== undefined) await pending;
        if (this.#written >= this.#limit) break; // Content-Length reached: stop iterating
      }
      if (this.#abortState.aborted) {
        this.#abort();
        return;
      }
      this.#ready();
      if (this.#phase < Phase.Sent) this.#commit(0);
      this.#finish();
    } catch (err) {
      this.#fail(err);
    } finally {
      const closing = this.#close(body, iterator, finished);
      if (closing !== undefined) await closing;
    }
  }

  /** An Array body with nothing sent yet: its whole length is known up front. */
  #sendArray(chunks: unknown[]): Promise<void> | undefined {
    let total = 0;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      if (!(c instanceof Uint8Array)) throw badChunk(c, i);
      total += c.length;
    }
    this.#ready();
    this.#commit(total);
    const framing = this.#framing!;
    if (framing.noBody || total === 0) {
      this.#finish();
      return undefined;
    }
    if (chunks.length === 1 && framing.contentLength === total) {
      this.#written = total;
      this.#sink.end(!framing.close, chunks[0] as Bytes);
      return undefined;
    }
    return this.#sendChunks(chunks as Bytes[], 0);
  }

  #sendChunks(chunks: Bytes[], from: number): Promise<void> | undefined {
    for (let i = from; i < chunks.length; i++) {
      if (this.#abortState.aborted) break;
      const pending = this.#send(chunks[i]!);
      if (pending !== undefined) return pending.then(() => this.#sendChunks(chunks, i + 1));
    }
    if (this.#abortState.aborted) this.#abort();
    else this.#finish();
    return undefined;
  }

  /** The host took the request over: nothing more is sent, and the body is not pumped. */
  #decline(): void {
    this.#phase = Phase.Declined;
    this.#framing = DECLINED;
  }

  /** Ends a response whose body has been sent, closing the connection when it fell short of Content-Length. */
  #finish(): void {
    if (this.#phase >= Phase.Declined) return;
    const framing = this.#framing!;
    const cl = framing.contentLength;
    if (!framing.noBody && cl !== undefined && this.#written < cl) {
      report(
        this.#core,
        this.#environ,
        this.#req,
        `app returned too few bytes (${this.#written}) for its Content-Length (${cl}); closing the connection`,
      );
      // An incomplete message: dropped (what was written flushed, then the connection closed), so
      // no transport can pass it off as whole.
      this.#sink.abortResponse();
      return;
    }
    this.#sink.end(!framing.close && !this.#mustClose());
  }

  #abort(): void {
    this.#aborted = true;
    // A declined request's response belongs to the host now, an upgraded one's connection to the socket.
    if (this.#phase < Phase.Declined) this.#sink.abortResponse();
  }

  #fail(err: unknown): void {
    if (this.#phase === Phase.Upgraded) {
      // The 101 is out: an error of the app ends the socket as a server error (RFC 6455 §7.4.1).
      if (!(err instanceof ClientDisconnectedError)) {
        report(this.#core, this.#environ, this.#req, 'error in app after accept(); closing the WebSocket', err);
      }
      this.#socket?.close(1011, 'server error').catch(() => {});
      return;
    }
    if (this.#abortState.aborted || err instanceof ClientDisconnectedError) {
      this.#abort();
      return;
    }
    if (err instanceof HttpError && this.#phase < Phase.Sent) {
      // An HttpError escaping the app (e.g. the body limit hit by wsgi.input) picks the answer.
      this.#status = sendPlain(
        this.#sink,
        err.status,
        this.#head,
        err.closeConnection || this.#mustClose(),
        err.message,
        err.headers,
      );
      return;
    }
    if (this.#phase < Phase.Sent && this.#sink.decline !== undefined && this.#sink.decline(err)) {
      this.#decline();
      return;
    }
    if (this.#phase === Phase.Declined) {
      report(this.#core, this.#environ, this.#req, 'error in app after the request was passed on', err);
      return;
    }
    report(
      this.#core,
      this.#environ,
      this.#req,
      this.#phase >= Phase.Sent ? 'error after the response started; aborting it' : 'error in app',
      err,
    );
    if (this.#phase >= Phase.Sent) {
      this.#abort();
      return;
    }
    this.#status = sendPlain(this.#sink, 500, this.#head, this.#mustClose());
  }

  /** Ends iteration and calls the body's close() exactly once; synchronous unless close() is async. */
  #close(
    body: Body | undefined,
    iterator: Iterator<Bytes> | AsyncIterator<Bytes> | undefined,
    finished: boolean,
  ): Promise<void> | undefined {
    if (iterator !== undefined && !finished && typeof iterator.return === 'function') {
      try {
        const r = iterator.return();
        if (isThenable(r)) {
          // A generator still suspended in an await (abort mid-chunk) finishes its return() later.
          if (this.#abortState.aborted)
            r.then(undefined, (e: unknown) =>
              report(this.#core, this.#environ, this.#req, 'body iterator return() failed', e),
            );
          else
            return Promise.resolve(r).then(
              () => this.#closeBody(body),
              (e: unknown) => {
                report(this.#core, this.#environ, this.#req, 'body iterator return() failed', e);
                return this.#closeBody(body);
              },
            );
        }
      } catch (err) {
        report(this.#core, this.#environ, this.#req, 'body iterator return() failed', err);
      }
    }
    return this.#closeBody(body);
  }

  #closeBody(body: Body | undefined): Promise<void> | undefined {
    if (body !== undefined && typeof body.close === 'function') {
      try {
        const r = body.close();
        if (isThenable(r)) {
          return Promise.resolve(r).then(
            () => this.#done(),
            (err: unknown) => {
              report(this.#core, this.#environ, this.#req, 'body close() failed', err);
              this.#done();
            },
          );
        }
      } catch (err) {
        report(this.#core, this.#environ, this.#req, 'body close() failed', err);
      }
    }
    this.#done();
    return undefined;
  }

  #done(): void {
    if (this.#phase === Phase.Upgraded) {
      // One record for the socket's whole life: once the body has ended and the socket has closed.
      this.#bodyEnded = true;
      if (this.#socket === undefined) record(this.#core, this.#environ, this.#req, 0, 0, this.#start, true);
      else if (this.#socket.readyState === WS_CLOSED) this.#recordSocket();
      return;
    }
    record(this.#core, this.#environ, this.#req, this.#status, this.#written, this.#start, this.#aborted);
  }

  #recordSocket(): void {
    record(this.#core, this.#environ, this.#req, 101, 0, this.#start, false);
  }

  /** Puts the offer in the environ (SPEC §16.2): accepting it commits the run to the socket. */
  #offerWebSocket(upgrade: UpgradeSource): void {
    const environ = this.#environ;
    environ['nsgi.websocket'] = new Offer(this.#core.websockets, upgrade, environ, this);
  }

  // OfferOwner: what the offer asks of the run (the run is the owner, so an open socket costs no closures).

  commitToSocket(): void {
    if (this.#phase !== Phase.Unstarted) {
      throw new InterfaceError(
        'ERR_NSGI_ACCEPT_AFTER_START',
        'nsgi.websocket.accept() after start_response(): answer either in HTTP or by accepting the socket',
      );
    }
    this.#phase = Phase.Upgraded;
    this.#framing = DECLINED;
    this.#status = 101;
  }

  socketOpened(socket: WebSocket): void {
    this.#socket = socket;
    // The run lives as long as the socket: keep of the request only what its record needs.
    const { method, target, httpVersion, remoteAddress } = this.#req;
    this.#req = { method, target, httpVersion, remoteAddress };
    this.#sink = RELEASED_SINK;
    this.#built = undefined;
    // The socket reports the end now (socketEnded): the host's exchange need not live on as the abort state.
    this.#abortState = detachAbort(this.#abortState);
  }

  socketEnded(): void {
    // The request's nsgi.signal aborts when its connection ends.
    this.#abortState.abort(new ClientDisconnectedError('the WebSocket closed'));
    if (this.#bodyEnded) this.#recordSocket();
  }

  /** Awaits `p`, but gives up when the client disconnects. */
  #raceAbort<T>(p: PromiseLike<T>): Promise<T> {
    const state = this.#abortState;
    if (state.aborted) return Promise.reject(new ClientDisconnectedError());
    return new Promise<T>((resolve, reject) => {
      const off = state.onAbort(() => reject(new ClientDisconnectedError()));
      p.then(
        (v) => {
          off();
          resolve(v);
        },
        (e: unknown) => {
          off();
          reject(e);
        },
      );
    });
  }
}
