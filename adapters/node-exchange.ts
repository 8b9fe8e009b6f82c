/**
 * The node:http host's request, shared by the node, Express and Fastify adapters (not a package
 * entry): the core's abort state, the request body as a pull source over an IncomingMessage, and
 * the response sink over a ServerResponse.
 */

import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { RequestAbort } from '../src/abort.js';
import { drained } from '../src/drain.js';
import type { RequestInfo } from '../src/environ.js';
import { ClientDisconnectedError } from '../src/errors.js';
import type { Framing, ResponseSink } from '../src/gateway.js';
import { mergedHeader } from '../src/header-merge.js';
import { regularFields } from '../src/http2.js';
import type { BodySource } from '../src/input.js';
import { closeAfterFlush, describeRequest, peersOf } from '../src/host.js';
import type { Bytes, ResponseHeaders } from '../src/types.js';
import type { UpgradeSource } from '../src/websocket.js';

/**
 * One request on node:http, in a single object: the core's abort state (watching the
 * response for a disconnect only once the exchange stops being synchronous), the request body as a
 * pull source over the IncomingMessage, and the response sink over the ServerResponse. The Express
 * adapter extends it.
 */
export class NodeExchange extends RequestAbort implements BodySource, ResponseSink {
  protected req: IncomingMessage;
  protected res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse) {
    super();
    this.req = req;
    this.res = res;
  }

  protected override startWatching(): void {
    const res = this.res;
    if (res.writableFinished) return;
    if (res.destroyed) {
      this.abort(new ClientDisconnectedError());
      return;
    }
    res.on('close', () => {
      if (!res.writableFinished) this.abort(new ClientDisconnectedError());
      // Node's HTTP/2 response reports its stream's writable side, which a reset finishes too.
      else if (this.req.httpVersionMajor === 2 && !res.finished) this.abort(new ClientDisconnectedError());
    });
  }

  /**
   * The connection went to a WebSocket: this object lives on as the request's abort state for as
   * long as the socket is open, so it lets go of the host's request and response.
   */
  release(): void {
    this.handedOver();
    const released = releasedMessages();
    this.req = released.req;
    this.res = released.res;
  }

  // BodySource

  next(): Promise<Bytes | null> {
    return pullFrom(this.req);
  }

  // ResponseSink: Node adds Date and applies the framing it is given.

  head(code: number, reason: string, headers: ResponseHeaders, framing: Framing): void {
    const res = this.res;
    if (framing.close) res.shouldKeepAlive = false;
    // HTTP/2 has no reason phrase (SPEC §17.2): Node warns when given one.
    if (this.req.httpVersionMajor === 2) res.writeHead(code, headers);
    else res.writeHead(code, reason, headers);
  }

  write(chunk: Bytes): boolean {
    return this.res.write(chunk);
  }

  drain(): Promise<void> {
    return drained(this.res);
  }

  end(reuse: boolean, last?: Bytes): void {
    const res = this.res;
    if (last === undefined) res.end();
    else res.end(last);
    // Over HTTP/2 (Node's compatibility objects) the socket is the session's: only the stream ends.
    if (!reuse && res.socket !== null && this.req.httpVersionMajor !== 2) closeAfterFlush(res.socket, false);
  }

  abortResponse(): void {
    const res = this.res;
    if (this.req.httpVersionMajor === 2) {
      resetStream(res);
      return;
    }
    const socket = res.socket;
    if (socket === null || socket.destroyed || !res.headersSent) {
      res.destroy();
      return;
    }
    // Flush what was already written, then close without completing the message: the client sees a
    // truncated response. A client that does not read is cut off after a grace period.
    socket.uncork();
    closeAfterFlush(socket, false);
  }
}

/** Resets the HTTP/2 stream under Node's compatibility response: the response is incomplete (SPEC §17.2). */
function resetStream(res: ServerResponse): void {
  // With an error, the stream is reset with INTERNAL_ERROR without being ended first.
  res.destroy(DROPPED);
}
const DROPPED = new Error('nsgi: the response was dropped');

/** The next chunk of a Node request body, null at its end; rejects if the client left first. */
export function pullFrom(req: IncomingMessage): Promise<Bytes | null> {
  const chunk = req.read() as Buffer | null;
  if (chunk !== null) return Promise.resolve(chunk);
  if (req.readableEnded) return Promise.resolve(null);
  if (req.destroyed) {
    return req.complete ? Promise.resolve(null) : Promise.reject(new ClientDisconnectedError());
  }
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      req.off('readable', onReadable);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onReadable = () => {
      const c = req.read() as Buffer | null;
      if (c === null) return; // end-of-stream arrives as 'end' next
      cleanup();
      resolve(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = () => {
      cleanup();
      reject(new ClientDisconnectedError());
    };
    const onClose = () => {
      cleanup();
      if (req.complete && req.readableLength === 0) resolve(null);
      else reject(new ClientDisconnectedError());
    };
    req.on('readable', onReadable);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * A node exchange for a response that other code may already have put headers on (Express
 * middleware, Fastify plugins): the app's headers are merged in by the one merge rule (mergedHeader).
 */
export class MergingNodeExchange extends NodeExchange {
  override head(code: number, reason: string, headers: ResponseHeaders, framing: Framing): void {
    const res = this.res;
    if (framing.close) res.shouldKeepAlive = false;
    for (let i = 0; i < headers.length; i++) {
      const [name, value] = headers[i]!;
      const held = res.getHeader(name);
      if (held === undefined) res.setHeader(name, value);
      else {
        const key = name.toLowerCase();
        res.setHeader(name, mergedHeader(key, held, value, repeats(headers, i, key)));
      }
    }
    if (this.req.httpVersionMajor === 2) res.writeHead(code);
    else res.writeHead(code, reason);
  }
}

/** True when a header before index `i` has the (lower-case) name `key`. */
export function repeats(headers: ResponseHeaders, i: number, key: string): boolean {
  for (let j = 0; j < i; j++) {
    const name = headers[j]![0];
    if (name.length === key.length && name.toLowerCase() === key) return true;
  }
  return false;
}

/**
 * The core's description of a node:http request, with the connection's addresses; hosts
 * fill in what they know besides (a routed path, a per-request log, lazy 100 Continue).
 */
export function describeNodeRequest(
  req: IncomingMessage,
  exchange: NodeExchange,
  target: string,
  scriptName: string | undefined,
): RequestInfo {
  // Node builds the version string afresh per request; the shared literal compares by identity in the core.
  const version = req.httpVersionMajor === 1 && req.httpVersionMinor === 1 ? '1.1' : req.httpVersion;
  const info = describeRequest(
    req.method ?? 'GET',
    target,
    version,
    req.rawHeaders,
    peersOf(req.socket),
    exchange,
    scriptName,
  );
  if (req.httpVersionMajor === 2) describeH2(info, req);
  const upgrade = (req as UpgradeRequest)[UPGRADE];
  if (upgrade !== undefined) info.upgrade = new ExchangeUpgrade(upgrade, exchange);
  return info;
}

/**
 * A request through Node's HTTP/2 compatibility objects (a Fastify with `http2: true`): its
 * pseudo-headers left out of the header lines, `:authority` for Host, and a body without
 * Content-Length read to the end of the stream (SPEC §17.1).
 */
function describeH2(info: RequestInfo, req: IncomingMessage): void {
  info.rawHeaders = regularFields(req.rawHeaders);
  const authority = req.headers[':authority'];
  info.authority = typeof authority === 'string' ? authority : undefined;
  const stream = (req as unknown as { stream?: { endAfterHeaders: boolean } }).stream;
  if (stream !== undefined && !stream.endAfterHeaders && req.headers['content-length'] === undefined) {
    info.streamed = true;
  }
}

let released: { req: IncomingMessage; res: ServerResponse } | undefined;
/** What a released exchange holds instead of its request and response: a pair on no connection. */
function releasedMessages(): { req: IncomingMessage; res: ServerResponse } {
  if (released === undefined) {
    const req = new IncomingMessage(new Socket());
    released = { req, res: new ServerResponse(req) };
  }
  return released;
}

/** An upgrade request's connection as one exchange offers it: taking it over releases the exchange. */
class ExchangeUpgrade implements UpgradeSource {
  readonly #connection: NodeUpgrade;
  readonly #exchange: NodeExchange;

  constructor(connection: NodeUpgrade, exchange: NodeExchange) {
    this.#connection = connection;
    this.#exchange = exchange;
  }

  takeOver(): { socket: Duplex; head: Buffer } {
    const taken = this.#connection.takeOver();
    this.#exchange.release();
    return taken;
  }
}

const UPGRADE = Symbol('nsgi.upgrade');

/** A request node:http handed to an 'upgrade' listener, marked with the connection it came on. */
interface UpgradeRequest extends IncomingMessage {
  [UPGRADE]?: NodeUpgrade;
}

/** The connection of an upgrade request, which the core takes over when the app accepts a WebSocket. */
class NodeUpgrade implements UpgradeSource {
  /** Until the connection is taken over. */
  #held: { res: ServerResponse; socket: Duplex; head: Buffer } | undefined;

  constructor(res: ServerResponse, socket: Duplex, head: Buffer) {
    this.#held = { res, socket, head };
  }

  takeOver(): { socket: Duplex; head: Buffer } {
    const held = this.#held;
    if (held === undefined) throw new Error('nsgi: the connection was already taken over');
    this.#held = undefined;
    held.res.detachSocket(held.socket as Socket);
    return { socket: held.socket, head: held.head };
  }
}

/**
 * The response to a request node:http handed to its 'upgrade' event (where the connection has left
 * Node's HTTP parser): a ServerResponse on that socket, which closes the connection when it ends, so
 * any handler (Express middleware, Fastify hooks, the core) can answer it in HTTP; and the request
 * marked so the core can take the connection over for a WebSocket (SPEC §16).
 */
export function upgradeResponse(req: IncomingMessage, socket: Duplex, head: Buffer): ServerResponse {
  const res = new ServerResponse(req);
  res.assignSocket(socket as Socket);
  markUpgrade(req, res, socket, head);
  return res;
}

/**
 * Marks an upgrade request whose response `res` is already on its socket (made by upgradeResponse,
 * or by another library that routes upgrades, as @fastify/websocket does): the response closes the
 * connection when it ends, and the core may take the connection over.
 */
export function markUpgrade(req: IncomingMessage, res: ServerResponse, socket: Duplex, head: Buffer): void {
  if ((req as UpgradeRequest)[UPGRADE] !== undefined) return;
  res.shouldKeepAlive = false;
  res.once('finish', () => closeAfterFlush(socket as Socket, false));
  (req as UpgradeRequest)[UPGRADE] = new NodeUpgrade(res, socket, head);
}
