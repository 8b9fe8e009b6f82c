/**
 * Fastify plugin: `fastify.register(nsgiPlugin, { app, prefix: '/legacy' })`. The app gets the raw
 * request body and answers through `reply`, so Fastify's hooks (logging, CORS, compression,
 * cookies, onSend, onResponse) apply to its responses as to any route's.
 */

import { Buffer } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Gateway, type Framing, type GatewayOptions } from '../src/gateway.js';
import { ClientDisconnectedError } from '../src/errors.js';
import { mergedHeader } from '../src/header-merge.js';
import { CLOSE_LINGER_MS, hostMount, PositionalMemo } from '../src/host.js';
import { internalize } from '../src/native.js';
import { targetPath } from '../src/uri.js';
import { encodeScriptName, ownsPath } from '../src/script-name.js';
import type { AppLike, Bytes, ErrorStream, ResponseHeaders } from '../src/types.js';
import {
  describeNodeRequest,
  markUpgrade,
  MergingNodeExchange,
  NodeExchange,
  repeats,
  upgradeResponse,
} from './node-exchange.js';

export interface NsgiPluginOptions extends Omit<GatewayOptions, 'errorLog'> {
  /** The app to serve under the plugin's `prefix` (register option), every method and path. */
  app: AppLike;
  /** Largest request body, in bytes; default Fastify's `bodyLimit` (1 MiB unless configured). */
  maxBodySize?: number | undefined;
  /**
   * An app error before the response started goes to Fastify's error handler (`reply.send(err)`)
   * instead of the gateway's generic 500. Default false: Fastify's default handler shows the error's
   * message to the client.
   */
  forwardErrors?: boolean | undefined;
  /**
   * Write to the socket directly (`reply.hijack()`): a little faster, but `onSend` hooks and
   * Fastify's error handler no longer see nsgi responses. Headers set on the reply earlier (CORS,
   * cookies) are still sent. Default false.
   */
  hijack?: boolean | undefined;
  /** When Fastify closes, how long open WebSockets have to finish after their 1001 (ms). Default 10 s. */
  shutdownGrace?: number | undefined;
}

/** `wsgi.errors` for one request: each write is an error record on `request.log`; never throws. */
class RequestLogErrors implements ErrorStream {
  readonly #log: FastifyRequest['log'];
  constructor(log: FastifyRequest['log']) {
    this.#log = log;
  }
  write(s: string): void {
    try {
      const text = (typeof s === 'string' ? s : String(s)).replace(/\n$/, '');
      if (text !== '') this.#log.error(text);
    } catch {
      // A logger that fails must not take the request down with it.
    }
  }
  writelines(lines: Iterable<string>): void {
    for (const line of lines) this.write(line);
  }
  flush(): void {}
}

/**
 * One request through `reply`: headers go on the reply, a single-chunk body is sent as one buffer,
 * anything longer as a stream that pulls from the app with backpressure. The body comes from
 * `request.raw`, and a disconnect is seen on `reply.raw`, as on node:http.
 */
class ReplyExchange extends NodeExchange {
  /** Let go of once the connection went to a WebSocket (release()). */
  #reply: FastifyReply | undefined;
  readonly #forwardErrors: boolean;
  #stream: Readable | undefined = undefined;
  #wantsMore: (() => void) | undefined = undefined;
  /** The app gave a Content-Type: Fastify adds one to a buffer that has none, so such bodies go as a stream. */
  #typed = false;
  /** The Content-Length the core framed the body with, not yet put on the reply. */
  #length: number | undefined = undefined;

  readonly #watchSignal: boolean;

  constructor(request: FastifyRequest, reply: FastifyReply, forwardErrors: boolean, watchSignal: boolean) {
    super(request.raw, reply.raw);
    this.#reply = reply;
    this.#forwardErrors = forwardErrors;
    this.#watchSignal = watchSignal;
  }

  override release(): void {
    super.release();
    this.#reply = undefined;
  }

  /**
   * Besides the connection closing, Fastify's own `request.signal` aborts the app when Fastify's
   * `handlerTimeout` fires. Only then is it read: otherwise it would only repeat the close already
   * watched for, and reading it makes Fastify create an AbortController and a listener per request
   * (bench/NOTES.md).
   */
  protected override startWatching(): void {
    super.startWatching();
    if (!this.#watchSignal) return;
    const signal = (this.#reply!.request as { signal?: AbortSignal }).signal;
    if (signal === undefined || this.aborted || this.res.writableFinished) return;
    const onAbort = (): void => {
      if (!this.res.writableFinished) this.abort(signal.reason ?? new ClientDisconnectedError());
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }

  override head(code: number, reason: string, headers: ResponseHeaders, framing: Framing): void {
    const reply = this.#reply!;
    if (reply.statusCode !== code) reply.code(code);
    // Fastify writes the status line with Node's writeHead(code): it keeps a message already set, and
    // without one uses the standard text, so only a different reason phrase needs setting.
    const res = reply.raw;
    // HTTP/2 has no reason phrase (SPEC §17.2); Node warns when one is read or set.
    if (
      this.req.httpVersionMajor !== 2 &&
      (res.statusMessage !== undefined ? res.statusMessage !== reason : reason !== STATUS_CODES[code])
    )
      res.statusMessage = reason;
    if (framing.close) reply.raw.shouldKeepAlive = false;
    let typed = false;
    // A known length is left to Fastify when the body goes as one Buffer (it sets Content-Length from
    // the Buffer, which is exactly this length); a streamed body gets it in #startStream().
    const length = framing.noBody ? undefined : framing.contentLength;
    this.#length = length;
    for (let i = 0; i < headers.length; i++) {
      const [name, value] = headers[i]!;
      const key = lowerName(name, i);
      if (key === 'content-type') typed = true;
      else if (length !== undefined && key === 'content-length') continue;
      // The merge rule (mergedHeader) where reply.header() alone would not keep it: a Vary held, or a
      // name the app repeats. reply.header() itself replaces any other name and appends to Set-Cookie,
      // as the rule says; asking for what is held only then keeps the common case cheap.
      const merge = key === 'vary' || (key !== 'set-cookie' && repeats(headers, i, key));
      const held = merge ? reply.getHeader(key) : undefined;
      reply.header(key, held === undefined ? value : mergedHeader(key, held, value, true));
    }
    this.#typed = typed;
  }

  override write(chunk: Bytes): boolean {
    return (this.#stream ?? this.#startStream()).push(chunk);
  }

  #startStream(): Readable {
    const stream = (this.#stream = new Readable({
      read: () => this.#pulled(),
      destroy: (err, cb) => {
        this.#pulled();
        cb(err);
      },
    }));
    if (this.#length !== undefined) this.#reply!.header('content-length', String(this.#length));
    this.#reply!.send(stream);
    return stream;
  }

  #pulled(): void {
    const resume = this.#wantsMore;
    this.#wantsMore = undefined;
    resume?.();
  }

  override drain(): Promise<void> {
    const stream = this.#stream;
    if (stream === undefined || stream.destroyed || stream.readableLength < stream.readableHighWaterMark)
      return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#wantsMore;
      this.#wantsMore = () => {
        previous?.();
        resolve();
      };
    });
  }

  override end(reuse: boolean, last?: Bytes): void {
    if (!reuse) this.#reply!.raw.shouldKeepAlive = false;
    let stream = this.#stream;
    if (stream === undefined) {
      // One buffer: the fast path. Nothing at all, or an untyped body, are sent so that Fastify adds no Content-Type.
      if (last === undefined || last.length === 0) {
        this.#reply!.send();
        return;
      }
      if (this.#typed) {
        this.#reply!.send(Buffer.isBuffer(last) ? last : Buffer.from(last.buffer, last.byteOffset, last.length));
        return;
      }
      stream = this.#startStream();
    }
    if (last !== undefined) stream.push(last);
    stream.push(null);
  }

  override abortResponse(): void {
    const stream = this.#stream;
    // What the app wrote still reaches the client, then the connection closes without completing
    // the message, as on node:http: once Fastify has taken every buffered chunk from the stream.
    if (stream === undefined || (stream.readableLength === 0 && this.res.headersSent)) {
      super.abortResponse();
      return;
    }
    const deadline = Date.now() + CLOSE_LINGER_MS;
    const check = (): void => {
      if (this.res.destroyed) return;
      if (stream.readableLength === 0 && this.res.headersSent) super.abortResponse();
      else if (Date.now() > deadline) this.res.destroy();
      else setImmediate(check);
    };
    check();
  }

  decline(err?: unknown): boolean {
    if (err === undefined || !this.#forwardErrors) return false;
    this.#reply!.send(err);
    return true;
  }
}

/**
 * Header names in lower case, as Fastify keys them, made once per name: a fresh lower-case string
 * per response would cost Fastify a string-table lookup per header.
 */
const lowerNames = new Map<string, string>();
/** The last response's names by position. */
const lowerByPosition = new PositionalMemo<string>(32);

/** `name` (the response's header at position `i`) in lower case, internalized. */
function lowerName(name: string, i: number): string {
  let lower = lowerByPosition.get(i, name);
  if (lower !== undefined) return lower;
  lower = lowerNames.get(name);
  if (lower === undefined) {
    lower = internalize(name.toLowerCase());
    if (lowerNames.size < 1024) lowerNames.set(name, lower);
  }
  lowerByPosition.set(i, name, lower);
  return lower;
}

type Handler = (request: FastifyRequest, reply: FastifyReply) => void;

/**
 * Node's parser reports a request it cannot read to the bytes after its head (an invalid
 * Transfer-Encoding, a bad chunk) as a client error, after the request was handed over and perhaps
 * answered already: the core answers such a request itself and closes. Node's own client-error
 * handler then sends nothing more once a response is on the wire; Fastify's writes a 400 whenever
 * the socket is writable, a second response on one request. Ending the socket first keeps the rule
 * Node keeps: one response, then the close.
 */
function endAnswered(_err: Error, socket: Duplex): void {
  const res = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
  if (res != null && res.headersSent && socket.writable) socket.end();
}

/** The nsgi mounts of each server, by encoded prefix ('' for the root): for bad URLs and 100-continue. */
const mountsByServer = new WeakMap<object, Map<string, Handler>>();
/** Requests whose `100 Continue` waits for the app's first read (set by the checkContinue listener). */
const deferredContinue = new WeakSet<object>();
/** Requests an nsgi handler took. */
const claimed = new WeakSet<object>();

/** The handler whose prefix owns `url`'s path, longest prefix first. */
function mountFor(mounts: Map<string, Handler>, url: string): Handler | undefined {
  const path = targetPath(url).toLowerCase();
  let best: string | undefined;
  for (const prefix of mounts.keys()) {
    const p = prefix.toLowerCase();
    const owns = p === '' || ownsPath(p, path);
    if (owns && (best === undefined || p.length > best.length)) best = prefix;
  }
  return best === undefined ? undefined : mounts.get(best);
}

/**
 * Give it to Fastify as `frameworkErrors` so that paths Fastify's router cannot decode (`%FF`,
 * percent-escapes that are not UTF-8) still reach the nsgi app mounted there, which gets them
 * byte for byte. Other framework errors, and such paths outside nsgi mounts, are answered as
 * Fastify would.
 */
export function nsgiFrameworkErrors(
  error: Error & { code?: string; statusCode?: number },
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const mounts = mountsByServer.get(request.server.server);
  const handler =
    error.code === 'FST_ERR_BAD_URL' && mounts !== undefined ? mountFor(mounts, request.raw.url ?? '/') : undefined;
  if (handler !== undefined) handler(request, reply);
  else reply.code(error.statusCode ?? 400).send(error);
}

/** The routes the plugin declares carry `config: { nsgi: true }`. */
function isNsgiRoute(config: unknown): boolean {
  return typeof config === 'object' && config !== null && (config as { nsgi?: unknown }).nsgi === true;
}

/** The bytes after the head of an upgrade @fastify/websocket routed: it keeps them under its own symbol. */
function foreignHead(raw: IncomingMessage): Buffer {
  const own = raw as unknown as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(raw).find((k) => k.description === 'ws-head');
  const head = key === undefined ? undefined : own[key];
  return Buffer.isBuffer(head) ? head : Buffer.alloc(0);
}

/** With `hijack: true`: straight to the socket, after the headers plugins set on the reply. */
class HijackedExchange extends MergingNodeExchange {}

const plugin: FastifyPluginCallback<NsgiPluginOptions> = (fastify, options, done) => {
  // A callback plugin must report through done(): a throw here would escape Fastify's boot.
  try {
    setUp(fastify, options);
  } catch (err) {
    done(
      err instanceof Error
        ? Object.assign(err, { message: `nsgiPlugin: ${err.message}` })
        : new Error(`nsgiPlugin: ${String(err)}`),
    );
    return;
  }
  done();
};

function setUp(fastify: FastifyInstance, options: NsgiPluginOptions): void {
  const { app, hijack = false, forwardErrors = false, shutdownGrace = 10_000, ...rest } = options;
  if (!(shutdownGrace >= 0))
    throw new RangeError(`shutdownGrace must be a number of ms >= 0, got ${String(shutdownGrace)}`);
  if (hijack && forwardErrors) {
    throw new TypeError(
      "forwardErrors hands errors to Fastify's error handler, which a hijacked reply bypasses; " +
        'use one of hijack: true and forwardErrors: true',
    );
  }
  const gateway = new Gateway(app, { ...rest, maxBodySize: options.maxBodySize ?? fastify.initialConfig.bodyLimit });
  // Our routes take no options of their own, so a handler timeout can only be the server's.
  const watchSignal = ((fastify.initialConfig as { handlerTimeout?: number }).handlerTimeout ?? 0) > 0;
  const prefix = encodeScriptName(fastify.prefix, 'the plugin prefix') ?? '';

  // The body stays on the wire for the app: no parser here reads it, whatever its type.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_request, _payload, parsed) => parsed(null));

  const handler = (request: FastifyRequest, reply: FastifyReply): void => {
    const raw = request.raw;
    // Only a request with Expect can have come through the checkContinue listener.
    const expects = raw.headers.expect !== undefined;
    if (expects) claimed.add(raw);
    const target = request.originalUrl;
    const url = raw.url ?? target;
    // A rewritten URL (rewriteUrl) routes as rewritten; the prefix may be matched without case.
    const mounted = url === target && prefix === '' ? undefined : hostMount(target, prefix, targetPath(url));
    const exchange = hijack
      ? new HijackedExchange(raw, reply.raw)
      : new ReplyExchange(request, reply, forwardErrors, watchSignal);
    if (hijack) {
      reply.hijack();
      for (const [name, value] of Object.entries(reply.getHeaders()))
        if (value !== undefined) reply.raw.setHeader(name, value);
    }
    // An upgrade routed here by @fastify/websocket (Node sets `upgrade` only on a request it handed
    // to an 'upgrade' listener, whose connection has left its HTTP parser).
    if ((raw as { upgrade?: boolean }).upgrade === true && raw.socket !== null) {
      markUpgrade(raw, reply.raw, raw.socket, foreignHead(raw));
    }
    const info = describeNodeRequest(raw, exchange, target, mounted?.scriptName ?? prefix);
    if (mounted !== undefined) info.path = mounted.path;
    info.errors = new RequestLogErrors(request.log);
    if (expects && deferredContinue.has(raw)) info.sendContinue = () => reply.raw.writeContinue();
    gateway.dispatch(info, exchange);
  };

  const server = fastify.server;
  let mounts = mountsByServer.get(server);
  if (mounts === undefined) {
    mountsByServer.set(server, (mounts = new Map<string, Handler>()));
    // 100 Continue when the app first reads the body: such requests come to Fastify through this
    // listener (Node then sends nothing itself); any that no nsgi handler takes at once get their
    // 100 Continue right away, so other routes' body parsers are not kept waiting.
    if (server.listenerCount('checkContinue') === 0) {
      const routing = fastify.routing.bind(fastify);
      server.on('checkContinue', (req, res) => {
        deferredContinue.add(req);
        routing(req, res);
        setImmediate(() => {
          if (!claimed.has(req) && !res.headersSent && !res.destroyed) res.writeContinue();
        });
      });
    }
    server.prependListener('clientError', endAnswered);
    // Upgrade requests (WebSocket handshakes) run through Fastify's routing and hooks like any
    // request, unless another listener (@fastify/websocket's) routes them.
    const routing = fastify.routing.bind(fastify);
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (server.listenerCount('upgrade') > 1) return;
      routing(req, upgradeResponse(req, socket, head));
    };
    server.on('upgrade', onUpgrade);
    fastify.addHook('preClose', (hookDone) => {
      server.off('upgrade', onUpgrade);
      hookDone();
    });
  }
  // Open sockets get close code 1001 when Fastify closes (SPEC §16.4).
  fastify.addHook('preClose', (hookDone) => {
    gateway.closeWebSockets(shutdownGrace).then(() => hookDone(), hookDone);
  });
  // @fastify/websocket, registered before, wraps every later route's handler to answer upgrades
  // itself; nsgi's routes keep their own handler, which offers the handshake to the app.
  fastify.addHook('onRoute', (route) => {
    if (isNsgiRoute(route.config)) route.handler = handler;
  });
  mounts.set(prefix, handler);

  const methods = fastify.supportedMethods;
  fastify.route({ method: methods, url: '/', handler, config: { nsgi: true } });
  fastify.route({ method: methods, url: '/*', handler, config: { nsgi: true } });
}

/**
 * Serves an nsgi app inside Fastify 5: `fastify.register(nsgiPlugin, { app, prefix: '/legacy' })`.
 * Encapsulated: its body parser and routes stay inside its prefix.
 */
export const nsgiPlugin = fp(plugin, { name: 'nsgi', fastify: '5.x', encapsulate: true });
export default nsgiPlugin;
