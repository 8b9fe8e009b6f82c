/**
 * WebSocket (SPEC §16): the handshake rules, the offer an app finds in `environ['nsgi.websocket']`,
 * and the socket it gets by accepting. Framing, masking, fragmentation and close codes are `ws`'s; a
 * host only hands over its connection (RequestInfo.upgrade).
 */

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { ClientDisconnectedError, HttpError, InterfaceError, ServerShutdownError } from './errors.js';
import { describeValue } from './describe.js';
import { internalize } from './native.js';
import { parseResponseHead } from './response-head.js';
import type { ResponseHeaders } from './types.js';

/** What a host that can carry WebSockets gives the core with a request (RequestInfo.upgrade). */
export interface UpgradeSource {
  /**
   * Hands the connection over for good: its socket, and the bytes that arrived after the request
   * head. The host stops reading and writing it. Called at most once, when the app accepts.
   */
  takeOver(): { socket: Duplex; head: Buffer };
}

/** The `websocket` option of every host (SPEC §16.4). */
export interface WebSocketOptions {
  /** Largest message in bytes; a larger one closes the socket with 1009. Default 16 MiB. */
  maxPayload?: number | undefined;
  /** How often each open socket is pinged (ms); one that has not answered the last ping is dropped. Default 20 s; 0 turns pings off. */
  pingInterval?: number | undefined;
  /** permessage-deflate: off by default (it costs memory per socket); `true` or `ws`'s options to offer it. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions | undefined;
  /** `send()` resolves once the socket's send buffer is at or below this many bytes. Default 1 MiB. */
  highWaterMark?: number | undefined;
  /** Messages received and not yet taken by the app before the socket stops reading. Default 1,024. */
  maxQueuedMessages?: number | undefined;
  /** How long a closing handshake may take before the connection is dropped (ms). Default 5 s. */
  closeTimeout?: number | undefined;
}

/** `environ['nsgi.websocket']`: a valid opening handshake the app may accept. */
export interface WebSocketOffer {
  /** The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order. */
  readonly protocols: readonly string[];
  /** The client's `Sec-WebSocket-Extensions`, as sent (`''` when none). */
  readonly extensions: string;
  /** Sends `101 Switching Protocols` and resolves with the socket; then the app returns `[]`. */
  accept(options?: AcceptOptions): Promise<NsgiWebSocket>;
}

export interface AcceptOptions {
  /** One of `offer.protocols`; without it no subprotocol is chosen. */
  protocol?: string | undefined;
  /** Extra header pairs for the 101 response. */
  headers?: ResponseHeaders | undefined;
}

/** A message as the app receives it: text frames as strings, binary frames as bytes. */
export type WebSocketMessage = string | Uint8Array;

/** An accepted WebSocket (SPEC §16.3). */
export interface NsgiWebSocket extends AsyncIterable<WebSocketMessage> {
  /** Sends a text (string) or binary (bytes) message; resolves once the send buffer is below the high-water mark. */
  send(data: WebSocketMessage): Promise<void>;
  /** Starts the closing handshake; resolves when it completes or times out. */
  close(code?: number, reason?: string): Promise<void>;
  ping(data?: WebSocketMessage): void;
  readonly protocol: string;
  readonly extensions: string;
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** After the end: the code received (1005 when none came, 1006 when the connection dropped). */
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
}

export const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;
export const DEFAULT_PING_INTERVAL = 20_000;
const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
const DEFAULT_MAX_QUEUED = 1024;
const DEFAULT_CLOSE_TIMEOUT = 5_000;
const SHUTDOWN_CODE = 1001;

// The handshake (RFC 6455 §4.2.1)

/** True when a field value lists `token` among its comma-separated elements, without regard to case. */
function lists(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** A 16-byte nonce in base64 (RFC 6455 §4.1). */
const KEY = /^[+/0-9A-Za-z]{21}[AQgw]==$/;

/** The handshake's fields, as the environ holds them. */
export interface HandshakeFields {
  HTTP_UPGRADE?: string | undefined;
  HTTP_CONNECTION?: string | undefined;
  HTTP_SEC_WEBSOCKET_KEY?: string | undefined;
  HTTP_SEC_WEBSOCKET_VERSION?: string | undefined;
}

/**
 * Whether a request is a WebSocket opening handshake: false when it does not ask for one (then it
 * is an ordinary request), true for a valid one; throws HttpError (400, or 426 for a version other
 * than 13) for one that asks but is not valid.
 */
export function websocketHandshake(
  method: string,
  httpVersion: string,
  env: HandshakeFields,
  hasBody: boolean,
): boolean {
  if (!lists(env.HTTP_UPGRADE, 'websocket') || !lists(env.HTTP_CONNECTION, 'upgrade')) return false;
  const refuse = (why: string) => new HttpError(400, `WebSocket handshake: ${why}`, { closeConnection: true });
  if (method !== 'GET') throw refuse(`the method must be GET, not ${method}`);
  if (httpVersion !== '1.1') throw refuse(`HTTP/1.1 is required, not HTTP/${httpVersion}`);
  if (hasBody) throw refuse('a handshake carries no body');
  const key = env.HTTP_SEC_WEBSOCKET_KEY;
  if (key === undefined || !KEY.test(key)) throw refuse('Sec-WebSocket-Key must be 16 bytes in base64');
  if (env.HTTP_SEC_WEBSOCKET_VERSION !== '13') {
    throw new HttpError(
      426,
      `WebSocket handshake: Sec-WebSocket-Version ${JSON.stringify(env.HTTP_SEC_WEBSOCKET_VERSION ?? '')} is not supported; this server speaks 13`,
      { closeConnection: true, headers: [['Sec-WebSocket-Version', '13']] },
    );
  }
  return true;
}

/** What an offer without subprotocols holds: one array for all of them. */
const NO_PROTOCOLS: readonly string[] = Object.freeze([]);

/** The subprotocols a `Sec-WebSocket-Protocol` value offers. */
function offeredProtocols(value: string | undefined): readonly string[] {
  if (value === undefined) return NO_PROTOCOLS;
  return value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

// The server side shared by every socket of one gateway

interface Settings {
  maxPayload: number;
  pingInterval: number;
  perMessageDeflate: boolean | PerMessageDeflateOptions;
  highWaterMark: number;
  maxQueuedMessages: number;
  closeTimeout: number;
}

function count(name: string, v: number | undefined, fallback: number, min: number): number {
  if (v === undefined) return fallback;
  if (!(typeof v === 'number' && Number.isFinite(v) && v >= min)) {
    throw new RangeError(`websocket.${name} must be a number >= ${min}, got ${String(v)}`);
  }
  return v;
}

function deflateOption(v: WebSocketOptions['perMessageDeflate']): boolean | PerMessageDeflateOptions {
  if (v === undefined) return false;
  if (typeof v === 'boolean' || (typeof v === 'object' && v !== null && !Array.isArray(v))) return v;
  throw new RangeError(
    `websocket.perMessageDeflate must be true, false or ws's options object, got ${describeValue(v)}`,
  );
}

/** Checks the `websocket` option once, at server creation. */
export function websocketSettings(options: WebSocketOptions = {}): Settings {
  return {
    maxPayload: count('maxPayload', options.maxPayload, DEFAULT_MAX_PAYLOAD, 1),
    pingInterval: count('pingInterval', options.pingInterval, DEFAULT_PING_INTERVAL, 0),
    perMessageDeflate: deflateOption(options.perMessageDeflate),
    highWaterMark: count('highWaterMark', options.highWaterMark, DEFAULT_HIGH_WATER_MARK, 0),
    maxQueuedMessages: count('maxQueuedMessages', options.maxQueuedMessages, DEFAULT_MAX_QUEUED, 1),
    closeTimeout: count('closeTimeout', options.closeTimeout, DEFAULT_CLOSE_TIMEOUT, 1),
  };
}

/** What ws sees as the request: the handshake fields, and the extra headers for the 101. */
interface HandshakeRequest {
  method: 'GET';
  url: string;
  headers: Record<string, string>;
  socket: Duplex;
  extraHeaders: ResponseHeaders;
}

/** The WebSocket side of one gateway: ws's server, the open sockets, their pings and their shutdown. */
export class WebSocketHub {
  readonly settings: Settings;
  #wss: WebSocketServer | undefined;
  readonly #open = new Set<Socket>();
  #pinger: NodeJS.Timeout | undefined;
  #shuttingDown = false;

  constructor(settings: Settings) {
    this.settings = settings;
  }

  #server(): WebSocketServer {
    if (this.#wss !== undefined) return this.#wss;
    const s = this.settings;
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: s.maxPayload,
      perMessageDeflate: s.perMessageDeflate,
      closeTimeout: s.closeTimeout,
      WebSocket: OwnedWebSocket,
    } as ConstructorParameters<typeof WebSocketServer>[0]);
    wss.on('headers', (headers: string[], req: IncomingMessage) => {
      for (const [name, value] of (req as unknown as HandshakeRequest).extraHeaders) headers.push(`${name}: ${value}`);
    });
    return (this.#wss = wss);
  }

  /** Completes the handshake on the socket the host handed over and returns the open socket. */
  upgrade(
    source: UpgradeSource,
    env: Record<string, unknown>,
    protocol: string | undefined,
    extraHeaders: ResponseHeaders,
    owner: OfferOwner,
  ): Socket {
    const { socket, head } = source.takeOver();
    forgetAddresses(socket);
    compactRequest(env);
    const headers: Record<string, string> = {
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': env.HTTP_SEC_WEBSOCKET_KEY as string,
      'sec-websocket-version': '13',
    };
    if (protocol !== undefined) headers['sec-websocket-protocol'] = protocol;
    const extensions = env.HTTP_SEC_WEBSOCKET_EXTENSIONS;
    if (typeof extensions === 'string') headers['sec-websocket-extensions'] = extensions;
    const req: HandshakeRequest = { method: 'GET', url: '/', headers, socket, extraHeaders };
    let ws: WebSocket | undefined;
    this.#server().handleUpgrade(req as unknown as IncomingMessage, socket, head, (w) => {
      ws = w;
    });
    // ws completes a handshake synchronously, or destroys a socket the client already closed.
    if (ws === undefined) throw new ClientDisconnectedError('the client went away before the WebSocket opened');
    const s = new Socket(ws, socket, this, owner);
    this.#open.add(s);
    this.#startPinging();
    socket.resume();
    return s;
  }

  /** A socket of this hub has closed. */
  forget(s: Socket): void {
    this.#open.delete(s);
    if (this.#open.size === 0) this.#stopPinging();
  }

  /** Throws once the server is shutting down: no new socket is opened then. */
  checkOpen(): void {
    if (this.#shuttingDown) throw new ServerShutdownError('the server is shutting down; no WebSocket is opened');
  }

  #startPinging(): void {
    const every = this.settings.pingInterval;
    if (this.#pinger !== undefined || every === 0) return;
    this.#pinger = setInterval(() => {
      for (const s of this.#open) s.heartbeat();
    }, every).unref();
  }

  #stopPinging(): void {
    clearInterval(this.#pinger);
    this.#pinger = undefined;
  }

  /**
   * Graceful shutdown: every open socket gets close code 1001; those still open after `grace` ms
   * are dropped. Resolves once all are closed. Later handshakes are refused.
   */
  shutdown(grace: number): Promise<void> {
    this.#shuttingDown = true;
    const open = [...this.#open];
    if (open.length === 0) return Promise.resolve();
    const timer = setTimeout(() => {
      for (const s of open) s.terminate();
    }, grace).unref();
    return Promise.all(open.map((s) => s.close(SHUTDOWN_CODE, 'server shutting down').catch(() => {}))).then(() =>
      clearTimeout(timer),
    );
  }
}

/**
 * Node caches a socket's two addresses, as objects, once they are asked for (the environ was built
 * from them); an open socket may live for hours, and asks again if anyone wants them.
 */
function forgetAddresses(socket: Duplex): void {
  const cached = socket as { _peername?: unknown; _sockname?: unknown };
  if (cached._peername !== undefined) cached._peername = undefined;
  if (cached._sockname !== undefined) cached._sockname = undefined;
}

/**
 * The request of an open socket lives as long as the socket (the app's coroutine holds its environ):
 * its strings are replaced by equal, internalized ones. A value cut from the request head keeps the
 * whole head alive; an internalized one does not, and the values every handshake repeats
 * (`websocket`, `Upgrade`, `13`, the Host) are then kept once for all sockets.
 */
function compactRequest(env: Record<string, unknown>): void {
  for (const key of Object.keys(env)) {
    const value = env[key];
    if (typeof value === 'string') env[key] = internalize(value);
  }
  const pairs = env['nsgi.raw_headers'];
  if (!Array.isArray(pairs)) return;
  for (const pair of pairs as unknown[]) {
    if (!Array.isArray(pair) || Object.isFrozen(pair)) continue;
    const [name, value] = pair as unknown[];
    if (typeof name === 'string') pair[0] = internalize(name);
    if (typeof value === 'string') pair[1] = internalize(value);
  }
}

/** What an offer asks of the run of its request. */
export interface OfferOwner {
  /** Checks that no HTTP response was started and commits the run to the socket; throws otherwise. */
  commitToSocket(): void;
  socketOpened(socket: Socket): void;
  /** The socket has closed. */
  socketEnded(socket: Socket): void;
}

/** The app's side of the handshake: `environ['nsgi.websocket']`. */
export class Offer implements WebSocketOffer {
  readonly protocols: readonly string[];
  readonly extensions: string;
  readonly #hub: WebSocketHub;
  /** The host's connection until accept() takes it; then let go, as the offer lives on in the environ. */
  #source: UpgradeSource | undefined;
  readonly #env: Record<string, unknown>;
  readonly #owner: OfferOwner;

  constructor(hub: WebSocketHub, source: UpgradeSource, env: object, owner: OfferOwner) {
    this.#hub = hub;
    this.#source = source;
    this.#env = env as Record<string, unknown>;
    this.#owner = owner;
    this.protocols = offeredProtocols(this.#env.HTTP_SEC_WEBSOCKET_PROTOCOL as string | undefined);
    this.extensions = (this.#env.HTTP_SEC_WEBSOCKET_EXTENSIONS as string | undefined) ?? '';
  }

  accept(options: AcceptOptions = {}): Promise<NsgiWebSocket> {
    try {
      return Promise.resolve(this.#accept(options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #accept(options: AcceptOptions): Socket {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new InterfaceError(
        'ERR_NSGI_WEBSOCKET_ACCEPT',
        `accept() takes an options object { protocol?, headers? }, got ${describeValue(options)}; ` +
          "to choose a subprotocol write accept({ protocol: 'chat' })",
      );
    }
    if (this.#source === undefined) {
      throw new InterfaceError(
        'ERR_NSGI_ACCEPT_TWICE',
        'nsgi.websocket.accept() was called a second time; a handshake is accepted once',
      );
    }
    const protocol = options.protocol;
    if (protocol !== undefined && !this.protocols.includes(protocol)) {
      throw new InterfaceError(
        'ERR_NSGI_WEBSOCKET_PROTOCOL',
        `accept(): the client did not offer the subprotocol ${JSON.stringify(protocol)}; ` +
          (this.protocols.length === 0
            ? 'it offered none, so leave protocol out'
            : `choose one of ${this.protocols.map((p) => JSON.stringify(p)).join(', ')} (offer.protocols)`),
      );
    }
    const headers = acceptHeaders(options.headers);
    this.#hub.checkOpen();
    this.#owner.commitToSocket();
    const source = this.#source;
    this.#source = undefined;
    const socket = this.#hub.upgrade(source, this.#env, protocol, headers, this.#owner);
    this.#owner.socketOpened(socket);
    return socket;
  }
}

/** The extra headers of a 101, checked as start_response checks headers; the handshake's own are the server's. */
function acceptHeaders(headers: ResponseHeaders | undefined): ResponseHeaders {
  if (headers === undefined) return [];
  let head;
  try {
    head = parseResponseHead('101 Switching Protocols', headers);
  } catch (err) {
    if (err instanceof InterfaceError) {
      throw new InterfaceError(err.code, err.message.replace(/^start_response\(\)/, 'accept()'));
    }
    throw err;
  }
  for (const [name] of head.headers) {
    const lower = name.toLowerCase();
    if (lower.startsWith('sec-websocket-') || lower === 'content-length') {
      throw new InterfaceError(
        'ERR_NSGI_INVALID_HEADERS',
        `accept(): ${name} is set by the server for the handshake; leave it out of headers`,
      );
    }
  }
  return head.headers;
}

const OWNER = Symbol('nsgi.socket');
const TEXT = { binary: false };
const BINARY = { binary: true };
/** What send() returns while there is room: one settled promise for every call. */
const SENT = Promise.resolve();

/**
 * ws's WebSocket handing its events straight to the nsgi socket that owns it: an open socket keeps
 * no listener, and no `once` wrapper, of its own (bench/NOTES.md).
 */
class OwnedWebSocket extends WebSocket {
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const owner = (this as unknown as { [OWNER]?: Socket })[OWNER];
    if (owner === undefined) return false;
    switch (event) {
      case 'message':
        owner.receive(b === true ? (a as Buffer) : (a as Buffer).toString('utf8'));
        break;
      case 'pong':
        owner.alive = true;
        break;
      case 'close':
        owner.ended(a as number, (b as Buffer).toString('utf8'));
        break;
      // 'error': ws closes with the right code (1002, 1007, 1009) after reporting a protocol error.
    }
    return true;
  }
}

/** An accepted socket over ws (SPEC §16.3); it is its own async iterator. */
export class Socket implements NsgiWebSocket, AsyncIterator<WebSocketMessage> {
  readonly #ws: WebSocket;
  readonly #raw: Duplex;
  readonly #settings: Settings;
  readonly #hub: WebSocketHub;
  readonly #owner: OfferOwner;
  /** Messages the app has not taken yet; made when the first one has to wait. */
  #queue: WebSocketMessage[] | undefined = undefined;
  #waiter: ((r: IteratorResult<WebSocketMessage>) => void) | undefined = undefined;
  /** Who waits for the end: close() and send()s waiting for room; made only when needed. */
  #endWaiters: Array<() => void> | undefined = undefined;
  #paused = false;
  #ended = false;
  /** The peer answered the last ping (or none was sent yet). */
  alive = true;
  closeCode: number | undefined = undefined;
  closeReason: string | undefined = undefined;

  constructor(ws: WebSocket, raw: Duplex, hub: WebSocketHub, owner: OfferOwner) {
    this.#ws = ws;
    this.#raw = raw;
    this.#settings = hub.settings;
    this.#hub = hub;
    this.#owner = owner;
    (ws as unknown as { [OWNER]: Socket })[OWNER] = this;
  }

  get protocol(): string {
    return this.#ws.protocol;
  }

  get extensions(): string {
    return this.#ws.extensions;
  }

  get readyState(): number {
    return this.#ws.readyState;
  }

  /** Resolves when the connection has closed. */
  closed(): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return new Promise((resolve) => (this.#endWaiters ??= []).push(resolve));
  }

  /** ws reported the end of the connection. */
  ended(code: number, reason: string): void {
    if (this.#ended) return;
    this.closeCode = code;
    this.closeReason = reason;
    this.#ended = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    if (w !== undefined && (this.#queue?.length ?? 0) === 0) w({ done: true, value: undefined });
    const waiters = this.#endWaiters;
    this.#endWaiters = undefined;
    if (waiters !== undefined) for (const resolve of waiters) resolve();
    this.#hub.forget(this);
    this.#owner.socketEnded(this);
  }

  /** ws delivered a message. */
  receive(message: WebSocketMessage): void {
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w({ done: false, value: message });
      return;
    }
    const queue = (this.#queue ??= []);
    queue.push(message);
    if (queue.length >= this.#settings.maxQueuedMessages && !this.#paused) {
      // The app is not taking messages: stop reading, so the client's sends wait instead of memory growing.
      this.#paused = true;
      this.#ws.pause();
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<WebSocketMessage> {
    return this;
  }

  next(): Promise<IteratorResult<WebSocketMessage>> {
    const queue = this.#queue;
    const queued = queue?.shift();
    if (queued !== undefined) {
      if (this.#paused && (queue?.length ?? 0) < this.#settings.maxQueuedMessages / 2) {
        this.#paused = false;
        this.#ws.resume();
      }
      return Promise.resolve({ done: false, value: queued });
    }
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    if (this.#waiter !== undefined) {
      return Promise.reject(
        new InterfaceError('ERR_NSGI_WEBSOCKET_READ', 'the WebSocket is already being read: iterate it in one place'),
      );
    }
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Leaving a `for await` early ends the iteration, not the connection. */
  return(): Promise<IteratorResult<WebSocketMessage>> {
    return Promise.resolve({ done: true, value: undefined });
  }

  send(data: WebSocketMessage): Promise<void> {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      return Promise.reject(
        new InterfaceError(
          'ERR_NSGI_WEBSOCKET_SEND',
          `send() takes a string (a text message) or a Uint8Array (a binary one), got ${typeof data}`,
        ),
      );
    }
    if (this.#ws.readyState !== 1) {
      return Promise.reject(new ClientDisconnectedError('the WebSocket is closed; send() cannot deliver'));
    }
    this.#ws.send(data, typeof data === 'string' ? TEXT : BINARY);
    if (this.#ws.bufferedAmount <= this.#settings.highWaterMark) return SENT;
    return this.#room();
  }

  /** Resolves once the send buffer is at or below the high-water mark, or the socket has closed. */
  #room(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.#ended) {
          this.#raw.off('drain', check);
          reject(new ClientDisconnectedError('the WebSocket closed before the message was sent'));
        } else if (this.#ws.bufferedAmount <= this.#settings.highWaterMark) {
          this.#raw.off('drain', check);
          resolve();
        }
      };
      this.#raw.on('drain', check);
      void this.closed().then(check);
    });
  }

  close(code = 1000, reason = ''): Promise<void> {
    if (this.#ended) return Promise.resolve();
    try {
      this.#ws.close(code, reason);
    } catch (err) {
      return Promise.reject(
        new InterfaceError(
          'ERR_NSGI_WEBSOCKET_CLOSE',
          `close(${String(code)}, ...): ${(err as Error).message}; use 1000, a code from RFC 6455 §7.4.1, or 3000-4999, ` +
            'and a reason of at most 123 bytes',
        ),
      );
    }
    return this.closed();
  }

  ping(data?: WebSocketMessage): void {
    if (this.#ws.readyState === 1) this.#ws.ping(data);
  }

  /** One ping period: drops a peer that did not answer the last ping, else pings it. */
  heartbeat(): void {
    if (this.#ws.readyState !== 1) return;
    if (!this.alive) {
      this.#ws.terminate();
      return;
    }
    this.alive = false;
    this.#ws.ping();
  }

  /** Drops the connection without a closing handshake. */
  terminate(): void {
    this.#ws.terminate();
  }
}

/** What a middleware learns of the app's use of the offer (watchOffer). */
export interface OfferWatch {
  /** Before the accept() call goes on (a validator may throw here). */
  accepting?(options: AcceptOptions): void;
  /** The socket is open. */
  accepted?(socket: NsgiWebSocket): void;
}

/**
 * For middleware: replaces the request's offer, if it has one, with one that reports the app's
 * accept() to `watch` and otherwise passes everything on. The app sees the same interface.
 */
export function watchOffer(environ: Record<string, unknown>, watch: OfferWatch): void {
  const offer = environ['nsgi.websocket'] as WebSocketOffer | undefined;
  if (offer === undefined || typeof offer.accept !== 'function') return;
  const watched: WebSocketOffer = {
    protocols: offer.protocols,
    extensions: offer.extensions,
    accept(options: AcceptOptions = {}) {
      try {
        watch.accepting?.(options);
      } catch (err) {
        return Promise.reject(err);
      }
      return offer.accept(options).then((socket) => {
        watch.accepted?.(socket);
        return socket;
      });
    },
  };
  environ['nsgi.websocket'] = watched;
}
