/**
 * One client connection of the raw server: feeds the socket's bytes to the parser, runs each request
 * through the gateway core in order, writes responses straight to the socket, and applies
 * keep-alive, pipelining, backpressure (both ways), timeouts and graceful close.
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { RequestAbort } from '../abort.js';
import { closeAfterFlush, describeRequest, type Peers } from '../host.js';
import { ClientDisconnectedError, HttpError, ServerShutdownError } from '../errors.js';
import type { Framing, Gateway, ResponseSink } from '../gateway.js';
import { drained } from '../drain.js';
import { EMPTY_SOURCE, type BodySource } from '../input.js';
import type { Bytes, ResponseHeaders } from '../types.js';
import { ParseError, RequestParser, type ParserHandler, type ParserLimits, type RequestHead } from './parser.js';
import { readIntoSharedBuffer } from './read-buffer.js';

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
}

/** Request body bytes queued for the app before the socket stops being read. */
const BODY_HIGH_WATER = 64 * 1024;

const enum Deadline {
  None,
  /** Waiting for (the rest of) a request head. */
  Header,
  /** Between requests, nothing received. */
  Idle,
  /** Receiving a request body. */
  Body,
}

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
/** Bodies up to this size are copied into the head's buffer so the response leaves in one write. */
const MERGE_LIMIT = 1024;

let dateLine = '';
let dateTimer: NodeJS.Timeout | undefined;
/** Recomputes the Date line, then again just after the next second starts. */
function refreshDate(): void {
  const now = Date.now();
  dateLine = `Date: ${new Date(now).toUTCString()}\r\n`;
  dateTimer = setTimeout(refreshDate, 1001 - (now % 1000)).unref();
}
/** `Date: <IMF-fixdate>\r\n`, kept current by a timer rather than a clock read per response. */
function currentDate(): string {
  if (dateTimer === undefined) refreshDate();
  return dateLine;
}

/** The last head serialized, with what it was made from. */
interface HeadMemo {
  code: number;
  reason: string;
  flags: number;
  date: string;
  /** The header names and values, copied: the app may change its list afterwards. */
  fields: string[];
  bytes: Buffer;
}
let lastHead: HeadMemo = { code: 0, reason: '', flags: 0, date: '', fields: [], bytes: Buffer.alloc(0) };

function sameHeaders(fields: string[], headers: ResponseHeaders): boolean {
  const n = headers.length;
  if (fields.length !== n * 2) return false;
  for (let i = 0; i < n; i++) {
    const h = headers[i]!;
    if (h[0] !== fields[2 * i] || h[1] !== fields[2 * i + 1]) return false;
  }
  return true;
}

/** The head and `body` in one buffer, so both leave in a single write. */
function joined(head: Buffer, body: Bytes): Buffer {
  const buf = Buffer.allocUnsafe(head.length + body.length);
  buf.set(head, 0);
  buf.set(body, head.length);
  return buf;
}

/** One request and its response on this connection: the core's abort state, body source and sink. */
class RawExchange extends RequestAbort implements BodySource, ResponseSink {
  readonly #conn: Connection;
  readonly #socket: Socket;
  readonly request: RequestHead;
  /** The request body has been fully received (or there is none). */
  bodyDone: boolean;
  /** The response has ended (or been dropped). */
  ended = false;
  /** The response must close the connection. */
  close = false;
  continueSent = false;
  #queue: Buffer[] | undefined = undefined;
  #queued = 0;
  #error: unknown = undefined;
  #waiter: { resolve(c: Bytes | null): void; reject(e: unknown): void } | undefined = undefined;
  #pendingHead: Buffer | undefined = undefined;
  #chunked = false;
  #http10: boolean;

  constructor(conn: Connection, socket: Socket, head: RequestHead) {
    super();
    this.#conn = conn;
    this.#socket = socket;
    this.request = head;
    this.bodyDone = head.bodyLength === 0;
    this.#http10 = head.httpVersion === '1.0';
  }

  protected override startWatching(): void {
    if (this.#socket.destroyed && !this.ended) this.abort(new ClientDisconnectedError());
  }

  // Request body, pushed by the parser and pulled by wsgi.input.

  pushBody(chunk: Buffer): void {
    if (this.ended) return; // the response is over: the rest of the body is read and dropped
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w.resolve(chunk);
      return;
    }
    (this.#queue ??= []).push(chunk);
    this.#queued += chunk.length;
    if (this.#queued >= BODY_HIGH_WATER) this.#conn.pauseBody();
  }

  endBody(): void {
    this.bodyDone = true;
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w.resolve(null);
    }
  }

  failBody(err: unknown): void {
    if (this.bodyDone || this.#error !== undefined) return;
    this.#error = err;
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w.reject(err);
    }
  }

  next(): Promise<Bytes | null> {
    const queue = this.#queue;
    if (queue !== undefined && queue.length > 0) {
      const chunk = queue.shift()!;
      this.#queued -= chunk.length;
      if (this.#queued < BODY_HIGH_WATER / 2) this.#conn.resumeBody();
      return Promise.resolve(chunk);
    }
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the parser's own failure, as it came
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.bodyDone) return Promise.resolve(null);
    this.#conn.resumeBody();
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  sendContinue(): void {
    if (this.continueSent || this.ended || this.#socket.destroyed) return;
    this.continueSent = true;
    this.#socket.write(CONTINUE);
  }

  // ResponseSink: the head is kept until the first bytes of the body, so both leave in one write.

  head(code: number, reason: string, headers: ResponseHeaders, framing: Framing): void {
    const h = this.request;
    this.close = framing.close || !h.keepAlive || this.#conn.mustClose;
    this.#chunked = framing.chunked;
    const flags = (framing.chunked ? 1 : 0) | (this.close ? 2 : this.#http10 ? 4 : 0);
    const date = currentDate();
    const m = lastHead;
    // Apps answer most requests with the same status and headers: reuse the serialized head.
    if (
      m.code === code &&
      m.flags === flags &&
      m.date === date &&
      m.reason === reason &&
      sameHeaders(m.fields, headers)
    ) {
      this.#pendingHead = m.bytes;
      return;
    }
    let s = `HTTP/1.1 ${code} ${reason}\r\n`;
    let hasDate = false;
    const fields = new Array<string>(headers.length * 2);
    for (let i = 0; i < headers.length; i++) {
      const [name, value] = headers[i]!;
      fields[2 * i] = name;
      fields[2 * i + 1] = value;
      if (name.length === 4 && (name === 'Date' || name.toLowerCase() === 'date')) hasDate = true;
      s += `${name}: ${value}\r\n`;
    }
    if (!hasDate) s += date;
    if (framing.chunked) s += 'Transfer-Encoding: chunked\r\n';
    if (this.close) s += 'Connection: close\r\n';
    else if (this.#http10) s += 'Connection: keep-alive\r\n';
    s += '\r\n';
    const bytes = Buffer.from(s, 'latin1');
    lastHead = { code, reason, flags, date, fields, bytes };
    this.#pendingHead = bytes;
  }

  write(chunk: Bytes): boolean {
    const socket = this.#socket;
    if (socket.destroyed) return true;
    const head = this.#pendingHead;
    this.#pendingHead = undefined;
    if (this.#chunked) {
      socket.cork();
      if (head !== undefined) socket.write(head);
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      const ok = socket.write(CRLF);
      socket.uncork();
      return ok;
    }
    if (head === undefined) return socket.write(chunk);
    if (chunk.length <= MERGE_LIMIT) return socket.write(joined(head, chunk));
    socket.cork();
    socket.write(head);
    const ok = socket.write(chunk);
    socket.uncork();
    return ok;
  }

  drain(): Promise<void> {
    if (!this.#socket.writableNeedDrain) return drained(this.#socket);
    // A client that stops reading is given sendTimeout to take the response, then cut off.
    this.#conn.awaitSend(true);
    return drained(this.#socket).then(() => this.#conn.awaitSend(false));
  }

  end(reuse: boolean, last?: Bytes): void {
    const socket = this.#socket;
    if (!socket.destroyed) {
      if (this.#chunked) {
        if (last !== undefined && last.length > 0) this.write(last);
        const head = this.#pendingHead;
        this.#pendingHead = undefined;
        socket.write(head === undefined ? LAST_CHUNK : joined(head, LAST_CHUNK));
      } else if (last !== undefined && last.length > 0) {
        this.write(last);
      } else if (this.#pendingHead !== undefined) {
        socket.write(this.#pendingHead);
        this.#pendingHead = undefined;
      }
    }
    this.ended = true;
    this.#conn.responseEnded(this, reuse && !this.close);
  }

  abortResponse(): void {
    // The head the core committed is part of what was written: it goes out, then the connection closes.
    const head = this.#pendingHead;
    this.#pendingHead = undefined;
    if (head !== undefined && !this.#socket.destroyed) this.#socket.write(head);
    this.ended = true;
    this.#conn.responseEnded(this, false);
  }
}

export class Connection implements ParserHandler {
  readonly #ctx: ConnectionContext;
  readonly #socket: Socket;
  readonly #parser: RequestParser;
  readonly #peers: Peers;

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
    };
    this.#deadline = ctx.now + ctx.headerTimeout;
    socket.setNoDelay(true);
    // TLS sockets read through their own layer; plain ones read into the server's buffer.
    this.#borrowed = !tls && readIntoSharedBuffer(socket, (chunk) => this.#onData(chunk));
    if (!this.#borrowed) socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('drain', () => this.#onDrain());
    socket.on('error', () => {}); // 'close' follows; a reset client is not an error of the server
    socket.on('close', () => this.#onClose());
  }

  /** True when responses must close the connection (server shutting down, or input no longer trusted). */
  get mustClose(): boolean {
    return this.#noMore || this.#ctx.closing;
  }

  // Input

  #onData(chunk: Buffer): void {
    if (this.#closed) return; // lingering after the last response: input is dropped
    if (this.#deadlineKind === Deadline.Idle) this.#setDeadline(Deadline.Header, this.#ctx.headerTimeout);
    if (this.#held !== undefined) {
      this.#held = Buffer.concat([this.#held, chunk]);
      return;
    }
    this.#feed(chunk);
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
          if (off > 0 && !corked) {
            // Pipelined requests: their responses leave together, in one write.
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
    closeAfterFlush(this.#socket);
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

  /** Server shutdown: idle connections close now; busy ones after their response. */
  shutdown(): void {
    if (this.#exchange === undefined) this.#destroy();
  }

  /** Server shutdown grace expired: the request in progress is aborted. */
  forceClose(): void {
    const ex = this.#exchange;
    if (ex !== undefined && !ex.ended) ex.abort(new ServerShutdownError());
    this.#destroy();
  }
}
