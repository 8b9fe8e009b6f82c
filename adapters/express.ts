/**
 * Express adapter: `expressApp.use('/prefix', toExpress(app))`. Express runs on node:http, so this is
 * the node adapter's exchange plus what a mount inside Express adds: SCRIPT_NAME from the mount,
 * headers earlier middleware set on `res`, bodies an upstream parser already read, `next()`.
 */

import { Buffer } from 'node:buffer';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InterfaceError } from '../src/errors.js';
import { hostMount, type HostMount } from '../src/host.js';
import { targetPath } from '../src/uri.js';
import { Gateway, type GatewayOptions } from '../src/gateway.js';
import type { AppLike, Bytes } from '../src/types.js';
import { describeNodeRequest, MergingNodeExchange, upgradeResponse } from './node-exchange.js';
import { describeValue } from '../src/describe.js';
import type { Duplex } from 'node:stream';

/** What the adapter reads from Express's request; `express.Request` has all of it. */
export interface ExpressRequest extends IncomingMessage {
  /** The part of the path the enclosing routers matched, percent-encoded as received. */
  baseUrl?: string;
  /** The request-target as received; Express never changes it. */
  originalUrl?: string;
  /** The client address after Express's `trust proxy` setting. */
  ip?: string | undefined;
  /** `'http'` or `'https'` after Express's `trust proxy` setting. */
  protocol?: string;
  /** What a body parser made of the body, if one ran. */
  body?: unknown;
  /** The raw body bytes, when a parser's `verify` hook (or the platform) kept them. */
  rawBody?: unknown;
}

/** A standard Express middleware. */
export type ExpressMiddleware = (req: ExpressRequest, res: ServerResponse, next: (err?: unknown) => void) => void;

export interface ExpressOptions extends Omit<GatewayOptions, 'trustProxy'> {
  /**
   * Take REMOTE_ADDR and `wsgi.url_scheme` from Express (`req.ip`, `req.protocol`), which apply
   * the app's `trust proxy` setting. Default false: the socket's address and scheme, as on node:http.
   */
  expressTrustProxy?: boolean | undefined;
  /**
   * An app error before the response started goes to `next(err)`, so Express's error handlers answer
   * it. Default false: the gateway logs it and answers 500.
   */
  forwardErrors?: boolean | undefined;
  /**
   * When the app answers 404, its response is dropped (the body is closed, not sent) and `next()` is
   * called, so the routes after the mount run, as with serve-static. Default false.
   */
  fallthrough?: boolean | undefined;
}

const CONSUMED_FIX =
  'mount toExpress() before the body parsers (app.use(prefix, toExpress(app)) ahead of express.json()), ' +
  'or keep the raw bytes with express.json({ verify: (req, res, buf) => { req.rawBody = buf } })';

/** A body that was read before the app ran: its bytes replayed, or the reason they cannot be. */
function replayedBody(req: ExpressRequest): Bytes | InterfaceError {
  let bytes: Bytes | undefined;
  let from: string;
  if (req.rawBody instanceof Uint8Array) {
    bytes = req.rawBody;
    from = 'req.rawBody';
  } else if (req.body instanceof Uint8Array) {
    bytes = req.body;
    from = 'req.body (express.raw())';
  } else if (typeof req.body === 'string' && /^(?:utf-?8)?$/i.test(charsetOf(req.headers['content-type']))) {
    bytes = Buffer.from(req.body, 'utf8');
    from = 'req.body (express.text())';
  } else {
    const what =
      req.body === undefined
        ? 'a middleware'
        : `a body parser (req.body is ${typeof req.body === 'string' ? 'a string' : 'an object'})`;
    return new InterfaceError(
      'ERR_NSGI_BODY_CONSUMED',
      `the request body was already read by ${what} before toExpress() ran, and its bytes were not kept: ${CONSUMED_FIX}`,
    );
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) !== bytes.length) {
    return new InterfaceError(
      'ERR_NSGI_BODY_CONSUMED',
      `the request body was already read before toExpress() ran, and ${from} holds ${bytes.length} bytes ` +
        `where Content-Length says ${declared} (decoded or decompressed?): ${CONSUMED_FIX}`,
    );
  }
  return bytes;
}

function charsetOf(contentType: string | undefined): string {
  const m = contentType === undefined ? null : /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType);
  return m === null ? '' : m[1]!;
}

const STREAM = Symbol('stream');

function noNext(): void {}

/** One request inside Express: the node exchange, with `next()` and Express's view of the request. */
class ExpressExchange extends MergingNodeExchange {
  #next: (err?: unknown) => void;
  readonly #options: ExpressOptions;
  /**
   * Decided at the first read: the stream itself when nothing upstream touched it, else the bytes
   * replayed (null once handed over) or why they cannot be.
   */
  #replay: Bytes | InterfaceError | null | typeof STREAM | undefined = undefined;

  constructor(req: ExpressRequest, res: ServerResponse, next: (err?: unknown) => void, options: ExpressOptions) {
    super(req, res);
    this.#next = next;
    this.#options = options;
  }

  override next(): Promise<Bytes | null> {
    const req = this.req as ExpressRequest;
    if (this.#replay === undefined) {
      const untouched = !req.readableDidRead && !req.readableEnded && (req as { _body?: boolean })._body !== true;
      this.#replay = untouched ? STREAM : replayedBody(req);
    }
    const replay = this.#replay;
    if (replay === STREAM) return super.next();
    if (replay instanceof InterfaceError) return Promise.reject(replay);
    this.#replay = null;
    return Promise.resolve(replay);
  }

  override release(): void {
    super.release();
    // Express's next() holds its whole request and router state.
    this.#next = noNext;
  }

  decline(err?: unknown): boolean {
    if (err === undefined ? !this.#options.fallthrough : !this.#options.forwardErrors) return false;
    this.#next(err);
    return true;
  }
}

/**
 * Wraps an app as Express middleware: `expressApp.use('/legacy', toExpress(app))`. SCRIPT_NAME is
 * where Express mounted it (`req.baseUrl`), PATH_INFO the rest; QUERY_STRING and REQUEST_URI come
 * from `req.originalUrl`.
 */
export function toExpress(
  app: AppLike,
  options: ExpressOptions = {},
): ExpressMiddleware & { readonly gateway: Gateway } {
  const gateway = new Gateway(app, options);
  const middleware: ExpressMiddleware = (req, res, next) => {
    // Snapshot now: Express restores req.url and req.baseUrl as soon as next() runs.
    const target = req.originalUrl ?? req.url ?? '/';
    let base = req.baseUrl ?? '';
    if (base.charCodeAt(base.length - 1) === 0x2f /* / */) base = base.replace(/\/+$/, '');
    let mounted: HostMount | undefined;
    if (target.charCodeAt(0) === 0x2f /* / */) {
      const routed = targetPath(req.url ?? '/');
      // Express adds a '/' when the mount point itself is requested ('/legacy' -> req.url '/').
      mounted = hostMount(target, base, routed === '/' && targetPath(target) === base ? base : base + routed);
    }
    const exchange = new ExpressExchange(req, res, next, options);
    const info = describeNodeRequest(req, exchange, target, mounted?.scriptName ?? base);
    info.path = mounted?.path;
    if (options.expressTrustProxy) {
      if (req.ip !== undefined && req.ip !== info.remoteAddress) {
        info.remoteAddress = req.ip;
        info.remotePort = undefined;
      }
      info.tls = req.protocol === 'https';
    }
    // Node answers `Expect: 100-continue` itself, unless the server hands such requests to this app
    // through 'checkContinue' (server.on('checkContinue', expressApp)): then the first read does.
    if (req.headers.expect !== undefined) {
      info.sendContinue = () => {
        if (((req.socket as { server?: EventEmitter }).server?.listenerCount('checkContinue') ?? 0) > 0)
          res.writeContinue();
      };
    }
    gateway.dispatch(info, exchange);
  };
  // The core, for what a server does around requests (closeWebSockets on shutdown).
  return Object.defineProperty(middleware, 'gateway', { value: gateway }) as ExpressMiddleware & {
    readonly gateway: Gateway;
  };
}

/** An Express app (or router) as a request handler: `express()` is one. */
export type ExpressHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The listener for the http server's `'upgrade'` event that runs upgrade requests through Express's
 * own middleware and routing, so an auth middleware can refuse them and a `toExpress()` app can accept
 * a WebSocket (SPEC §16):
 *
 *     const server = expressApp.listen(3000);
 *     server.on('upgrade', expressUpgrade(expressApp));
 *
 * A response written in HTTP (by the app or any middleware) closes the connection.
 */
export function expressUpgrade(
  expressApp: ExpressHandler,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  if (typeof expressApp !== 'function') {
    throw new TypeError(
      `expressUpgrade() takes the Express app (the function express() returned), got ${describeValue(expressApp)}`,
    );
  }
  return (req, socket, head) => expressApp(req, upgradeResponse(req, socket, head));
}
