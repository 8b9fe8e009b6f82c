/**
 * One client connection of the raw server: feeds the socket's bytes to the parser, runs each request
 * through the gateway core in order, writes responses straight to the socket, and applies
 * keep-alive, pipelining, backpressure (both ways), timeouts and graceful close.
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { closeAfterFlush, describeRequest, type Peers } from '../host.js';
import { ClientDisconnectedError, HttpError, ServerShutdownError } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { EMPTY_SOURCE } from '../input.js';
import { RawExchange, type ExchangeOwner } from './exchange.js';
import { ParseError, RequestParser, type ParserHandler, type ParserLimits, type RequestHead } from './parser.js';
import { clientUsedTls, namesClient, parseProxyHeader, type ProxyMode } from './proxy-protocol.js';
import { readIntoSharedBuffer, releaseSharedBuffer, type SharedRead } from './read-buffer.js';

function ignore(): void {}

/**
 * The connection a socket belongs to: the socket's listeners are functions shared by every
 * connection (Node calls them with the socket as `this`), not closures made per connection.
 */
const CONNECTION = Symbol('nsgi.connection');
type OwnedSocket = Socket & { [CONNECTION]?: Connection | undefined };

// Set by Connection's static block, which alone can reach its private methods.
let onSocketRead: SharedRead;
let onSocketData: (this: OwnedSocket, chunk: Buffer) => void;
let onSocketEnd: (this: OwnedSocket) => void;
let onSocketDrain: (this: OwnedSocket) => void;
let onSocketClose: (this: OwnedSocket) => void;

const EMPTY = Buffer.alloc(0);

/** On shutdown, how much longer an idle keep-alive connection is kept for a request already on its way. */
export const DRAIN_IDLE_MS = 500;

/** What every connection of one server shares. */
export interface ConnectionContext {
  readonly gateway: Gateway;
  readonly limits: ParserLimits;
  readonly scriptName: string | undefined;
  readonly headerTimeout: number;
  readonly keepAliveTimeout: number;
  readonly requestTimeout: number;
  readonly sendTimeout: number;
  /** A coarse clock (ms), advanced by the server's timer; deadlines are checked against it. */
  readonly now: number;
  /** True once the server is shutting down: every response closes its connection. */
  readonly closing: boolean;
  /** Called once when the connection is gone. */
  forget(conn: Connection): void;
  /** The PROXY protocol policy (SPEC §18), or undefined when it is off. */
  readonly proxy: ProxyPolicy | undefined;
}

export interface ProxyPolicy {
  readonly mode: ProxyMode;
  /** True for a peer that may (in 'v1'/'v2' mode: must) send a PROXY header. */
  allows(address: string): boolean;
}

const enum Deadline {
  None,
  /** Waiting for (the rest of) a request head. */
  Header,
  /** Between requests, nothing received. */
  Idle,
  /** Receiving a request body. */
  Body,
}

export class Connection implements ParserHandler, ExchangeOwner {
  readonly #ctx: ConnectionContext;
  readonly #socket: Socket;
  readonly #parser: RequestParser;
  #peers: Peers;
  /** While a PROXY header is awaited: the bytes received so far; then undefined. */
  #proxyBytes: Buffer | undefined = undefined;
  /** The peer is in proxyAllowFrom: its header is read (else one is refused). */
  #proxyAllowed = false;

  /** The request being answered (and possibly still received). */
  #exchange: RawExchange | undefined = undefined;
  /** Bytes of later requests, held until the current response is done. */
  #held: Buffer | undefined = undefined;
  #feeding = false;
  #bodyPaused = false;
  #waitingDrain = false;
  /** No further request is read: the client said close, or framing can no longer be trusted. */
  #noMore = false;
  /** The client sent FIN: nothing more will arrive. */
  #peerEnded = false;
  #closed = false;
  #deadline: number;
  #deadlineKind = Deadline.Header;
  /** When a blocked write must have drained (0: none pending). Kept apart: it can overlap the others. */
  #sendDeadline = 0;
  /** Reads arrive in a buffer that is reused: bytes kept past #onData are copied. */
  readonly #borrowed: boolean;

  constructor(ctx: ConnectionContext, socket: Socket, tls: boolean) {
    this.#ctx = ctx;
    this.#socket = socket;
    this.#parser = new RequestParser(ctx.limits, this);
    this.#peers = {
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
      localAddress: socket.localAddress,
      localPort: socket.localPort,
      tls,
      proxy: undefined,
    };
    if (ctx.proxy !== undefined) {
      this.#proxyBytes = EMPTY;
      this.#proxyAllowed = this.#peers.remoteAddress !== undefined && ctx.proxy.allows(this.#peers.remoteAddress);
    }
    this.#deadline = ctx.now + ctx.headerTimeout;
    socket.setNoDelay(true);
    (socket as OwnedSocket)[CONNECTION] = this;
    // TLS sockets read through their own layer; plain ones read into the server's buffer.
    this.#borrowed = !tls && readIntoSharedBuffer(socket, onSocketRead);
    if (!this.#borrowed) socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('drain', onSocketDrain);
    socket.on('error', ignore); // 'close' follows; a reset client is not an error of the server
    socket.on('close', onSocketClose);
  }

  static {
    onSocketRead = function (this: OwnedSocket, n: number, buf: Buffer): void {
      const c = this[CONNECTION];
      if (c !== undefined) c.#onData(buf.subarray(0, n));
    };
    onSocketData = function (chunk) {
      const c = this[CONNECTION];
      if (c !== undefined) c.#onData(chunk);
    };
    onSocketEnd = function () {
      const c = this[CONNECTION];
      if (c !== undefined) c.#onEnd();
    };
    onSocketDrain = function () {
      const c = this[CONNECTION];
      if (c !== undefined) c.#onDrain();
    };
    onSocketClose = function () {
      const c = this[CONNECTION];
      if (c !== undefined) c.#onClose();
    };
  }

  /**
   * Gives the connection up for a WebSocket: nothing more is parsed or answered here, the bytes held
   * past the handshake go with the socket, and the server no longer counts it (the gateway's
   * WebSockets do, and close them on shutdown).
   */
  takeOver(ex: RawExchange): { socket: Socket; head: Buffer } {
    const socket = this.#socket;
    const head = this.#held ?? Buffer.alloc(0);
    this.#held = undefined;
    this.#closed = true;
    if (this.#exchange === ex) this.#exchange = undefined;
    this.#setDeadline(Deadline.None, 0);
    if (this.#borrowed) releaseSharedBuffer(socket);
    else socket.off('data', onSocketData);
    socket.off('end', onSocketEnd);
    socket.off('drain', onSocketDrain);
    socket.off('close', onSocketClose);
    socket.off('error', ignore);
    (socket as OwnedSocket)[CONNECTION] = undefined;
    this.#ctx.forget(this);
    return { socket, head };
  }

  /** True when responses must close the connection (server shutting down, or input no longer trusted). */
  get mustClose(): boolean {
    return this.#noMore || this.#ctx.closing;
  }

  // Input

  #onData(chunk: Buffer): void {
    if (this.#closed) return; // lingering after the last response: input is dropped
    if (this.#proxyBytes !== undefined) {
      this.#proxyData(chunk);
      return;
    }
    if (this.#deadlineKind === Deadline.Idle) this.#setDeadline(Deadline.Header, this.#ctx.headerTimeout);
    if (this.#held !== undefined) {
      this.#held = Buffer.concat([this.#held, chunk]);
      return;
    }
    this.#feed(chunk);
  }

  /** The first bytes of a connection, while the PROXY policy asks whether they begin with a header. */
  #proxyData(chunk: Buffer): void {
    const buf = this.#proxyBytes!.length === 0 ? chunk : Buffer.concat([this.#proxyBytes!, chunk]);
    // A peer not allowed to send one is read as 'auto', so that a header it sends is seen and refused.
    const r = parseProxyHeader(buf, this.#proxyAllowed ? this.#ctx.proxy!.mode : 'auto');
    switch (r.kind) {
      case 'incomplete':
        this.#proxyBytes = this.#borrowed && buf === chunk ? Buffer.from(chunk) : buf;
        return;
      case 'invalid':
        this.#refuseProxy(r.reason);
        return;
      case 'absent':
        this.#proxyBytes = undefined;
        this.#feed(buf);
        return;
      case 'header': {
        if (!this.#proxyAllowed) {
          this.#refuseProxy('a PROXY header from an address not in proxyAllowFrom');
          return;
        }
        this.#proxyBytes = undefined;
        const h = r.header;
        const own = this.#peers;
        this.#peers = namesClient(h)
          ? {
              remoteAddress: h.source!.address,
              remotePort: h.source!.port,
              localAddress: h.destination?.address,
              localPort: h.destination?.port,
              tls: own.tls || clientUsedTls(h),
              proxy: h,
            }
          : { ...own, proxy: h };
        if (r.length < buf.length) this.#feed(buf.subarray(r.length));
      }
    }
  }

  /** A PROXY header that is bad, late or not allowed: closed with nothing answered, and logged. */
  #refuseProxy(reason: string): void {
    const { remoteAddress, remotePort } = this.#peers;
    this.#ctx.gateway.log(`PROXY protocol: connection from ${remoteAddress}:${remotePort} closed: ${reason}`);
    this.#proxyBytes = undefined;
    this.#destroy();
  }

  #feed(buf: Buffer): void {
    const socket = this.#socket;
    const parser = this.#parser;
    this.#feeding = true;
    let corked = false;
    try {
      let off = 0;
      while (off < buf.length) {
        if (this.#closed) break;
        if (!parser.inBody) {
          if (this.#noMore) break;
          if (this.#exchange !== undefined || this.#waitingDrain) {
            this.#held = this.#borrowed ? Buffer.from(buf.subarray(off)) : buf.subarray(off);
            socket.pause();
            break;
          }
          if (!corked) {
            // The responses to what one read holds (pipelined requests) leave together, in one
            // write; a lone response leaves as it would uncorked, in a write of its own.
            corked = true;
            socket.cork();
          }
        }
        off = parser.execute(buf, off);
      }
    } catch (err) {
      this.#parseError(err);
    } finally {
      this.#feeding = false;
      parser.doneWith();
      if (corked && !socket.destroyed) socket.uncork();
    }
  }

  onHead(head: RequestHead): void {
    const ex = new RawExchange(this, this.#socket, head);
    this.#exchange = ex;
    if (!head.keepAlive) this.#noMore = true;
    if (head.bodyLength === 0) this.#setDeadline(Deadline.None, 0);
    else this.#setDeadline(Deadline.Body, this.#ctx.requestTimeout);
    const info = describeRequest(
      head.method,
      head.target,
      head.httpVersion,
      head.rawHeaders,
      this.#peers,
      ex,
      this.#ctx.scriptName,
    );
    // The parser applied the request-head rules: the core takes its framing as settled.
    info.framing = head;
    if (head.bodyLength === 0) info.body = EMPTY_SOURCE;
    if (head.expectContinue) info.sendContinue = () => ex.sendContinue();
    info.upgrade = ex;
    this.#ctx.gateway.dispatch(info, ex);
  }

  onBody(chunk: Buffer): void {
    this.#exchange?.pushBody(this.#borrowed ? Buffer.from(chunk) : chunk);
  }

  onComplete(): void {
    const ex = this.#exchange;
    if (ex === undefined || ex.bodyDone) return;
    ex.endBody();
    if (ex.ended) this.#next(ex);
    else this.#setDeadline(Deadline.None, 0);
  }

  pauseBody(): void {
    if (this.#bodyPaused) return;
    this.#bodyPaused = true;
    this.#socket.pause();
  }

  resumeBody(): void {
    if (!this.#bodyPaused) return;
    this.#bodyPaused = false;
    if (this.#held === undefined && !this.#waitingDrain) this.#socket.resume();
  }

  #parseError(err: unknown): void {
    this.#noMore = true;
    const ex = this.#exchange;
    if (!(err instanceof HttpError)) {
      process.stderr.write(`nsgi: internal error in the request parser: ${String((err as Error)?.stack ?? err)}\n`);
      this.#destroy();
      return;
    }
    if (ex !== undefined) {
      // A broken body: the app's next read fails with this error (the core answers its status if
      // the response has not started); the connection closes after the response.
      ex.failBody(err);
      if (ex.ended) this.#closeSoon();
      return;
    }
    const line = this.#parser.requestLine ?? { method: '-', target: '-', httpVersion: '1.1' as const };
    const summary = { ...line, remoteAddress: this.#peers.remoteAddress };
    const sink = new RawExchange(this, this.#socket, {
      ...line,
      rawHeaders: [],
      bodyLength: 0,
      keepAlive: false,
      expectContinue: false,
    });
    this.#exchange = sink;
    this.#ctx.gateway.refuse(summary, sink, err instanceof ParseError ? err : new ParseError(err.status, err.message));
  }

  // Output

  /** The core finished (or dropped) a response; `reuse` says whether the connection may carry another. */
  responseEnded(ex: RawExchange, reuse: boolean): void {
    if (ex !== this.#exchange) return;
    if (!reuse || this.#noMore) {
      this.#closeSoon();
      return;
    }
    if (ex.bodyDone) {
      this.#next(ex);
      return;
    }
    // The app did not read the whole body: it is read and dropped, then the next request follows.
    this.resumeBody();
  }

  /** The exchange is over both ways: go on with the next request. */
  #next(ex: RawExchange): void {
    if (ex !== this.#exchange) return;
    this.#exchange = undefined;
    if (this.#noMore || this.#ctx.closing) {
      this.#closeSoon();
      return;
    }
    const socket = this.#socket;
    if (socket.writableNeedDrain) {
      // A client that does not read its responses gets no more of them until it does.
      this.#waitingDrain = true;
      this.awaitSend(true);
      socket.pause();
      return;
    }
    this.#continue();
  }

  #continue(): void {
    const held = this.#held;
    if (held !== undefined && !this.#feeding) {
      this.#held = undefined;
      this.#feed(held);
    }
    if (this.#exchange === undefined && !this.#closed) {
      if (this.#peerEnded) {
        this.#closeSoon();
        return;
      }
      if (this.#parser.idle) this.#setDeadline(Deadline.Idle, this.#ctx.keepAliveTimeout);
      else this.#setDeadline(Deadline.Header, this.#ctx.headerTimeout);
    }
    const socket = this.#socket;
    if (this.#held === undefined && !this.#bodyPaused && !this.#closed && socket.isPaused()) socket.resume();
  }

  #onDrain(): void {
    if (!this.#waitingDrain) return;
    this.#waitingDrain = false;
    this.awaitSend(false);
    this.#continue();
  }

  #onEnd(): void {
    // The client half-closed: what it sent is still answered, then the connection closes.
    this.#peerEnded = true;
    const ex = this.#exchange;
    if (ex === undefined) {
      if (this.#held === undefined) this.#closeSoon();
      return;
    }
    if (!ex.bodyDone) {
      // The body can never be completed: the request is as good as disconnected.
      this.#noMore = true;
      ex.failBody(new ClientDisconnectedError());
      if (!ex.ended) ex.abort(new ClientDisconnectedError());
    }
  }

  #onClose(): void {
    this.#closed = true;
    const ex = this.#exchange;
    if (ex !== undefined) {
      ex.failBody(new ClientDisconnectedError());
      if (!ex.ended) ex.abort(new ClientDisconnectedError());
    }
    this.#ctx.forget(this);
  }

  // Closing

  /** Ends the connection after what was written is flushed, then lingers briefly so the client gets it. */
  #closeSoon(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#setDeadline(Deadline.None, 0);
    closeAfterFlush(this.#socket, true);
  }

  #destroy(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  #setDeadline(kind: Deadline, ms: number): void {
    this.#deadlineKind = kind;
    this.#deadline = this.#ctx.now + ms;
  }

  /** A write is waiting for the client to read (true) or has drained (false). */
  awaitSend(waiting: boolean): void {
    this.#sendDeadline = waiting ? this.#ctx.now + this.#ctx.sendTimeout : 0;
  }

  /** Called by the server's timer: applies the header, idle, body and send timeouts. */
  checkDeadline(now: number): void {
    if (this.#sendDeadline !== 0 && now >= this.#sendDeadline && !this.#closed) {
      // The client has not taken a byte of the response for sendTimeout: it is cut off.
      this.#sendDeadline = 0;
      const ex = this.#exchange;
      if (ex !== undefined && !ex.ended)
        ex.abort(new ClientDisconnectedError(`client did not read the response for ${this.#ctx.sendTimeout} ms`));
      this.#destroy();
      return;
    }
    if (this.#deadlineKind === Deadline.None || now < this.#deadline || this.#closed) return;
    const kind = this.#deadlineKind;
    this.#deadlineKind = Deadline.None;
    if (this.#proxyBytes !== undefined && this.#proxyAllowed) {
      this.#refuseProxy(`no complete PROXY header within ${this.#ctx.headerTimeout} ms`);
      return;
    }
    if (kind === Deadline.Idle || (kind === Deadline.Header && this.#parser.idle && this.#held === undefined)) {
      this.#destroy();
      return;
    }
    if (kind === Deadline.Header) {
      this.#parseError(new ParseError(408, `request head not received within ${this.#ctx.headerTimeout} ms`));
      return;
    }
    // Body: the app's read fails (408 if nothing was sent yet); the connection closes afterwards.
    this.#noMore = true;
    this.#exchange?.failBody(
      new HttpError(408, `request body not received within ${this.#ctx.requestTimeout} ms`, { closeConnection: true }),
    );
  }

  /**
   * Server shutdown: busy connections close after their response; idle keep-alive ones once they
   * have been idle for DRAIN_IDLE_MS more (a request that arrives meanwhile is answered, with
   * Connection: close; closed at once, it would reset a request its client sent just then). One
   * that has not sent its first request keeps its header timeout: its client connected to send one,
   * and on a busy machine may not have run since.
   */
  shutdown(): void {
    if (this.#exchange !== undefined || this.#closed || this.#deadlineKind !== Deadline.Idle) return;
    this.#setDeadline(Deadline.Idle, Math.min(DRAIN_IDLE_MS, this.#deadline - this.#ctx.now));
  }

  /** Server shutdown grace expired: the request in progress is aborted. */
  forceClose(): void {
    const ex = this.#exchange;
    if (ex !== undefined && !ex.ended) ex.abort(new ServerShutdownError());
    this.#destroy();
  }
}
