/**
 * One request on a raw-server connection: the core's abort state, the request body the parser pushes
 * and wsgi.input pulls (with backpressure on the socket), and the response sink that writes HTTP/1.1
 * straight to the socket (a serialized head reused while the app repeats it, the head and a small body
 * in one write, chunked framing).
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { RequestAbort } from '../abort.js';
import { drained } from '../drain.js';
import { ClientDisconnectedError } from '../errors.js';
import type { Framing, ResponseSink } from '../gateway.js';
import type { BodySource } from '../input.js';
import type { Bytes, ResponseHeaders } from '../types.js';
import type { RequestHead } from './parser.js';
import type { UpgradeSource } from '../websocket.js';

/** What a RawExchange needs of its connection. */
export interface ExchangeOwner {
  /** The connection closes after the response in hand (shutdown, Connection: close). */
  readonly mustClose: boolean;
  pauseBody(): void;
  resumeBody(): void;
  /** A response is waiting for the socket to drain (sendTimeout runs), or no longer is. */
  awaitSend(waiting: boolean): void;
  responseEnded(ex: RawExchange, reuse: boolean): void;
  /** Gives up the connection for good (a WebSocket): the socket and the bytes read past the head. */
  takeOver(ex: RawExchange): { socket: Socket; head: Buffer };
}

/** The owner of an exchange whose connection was taken over: nothing more is asked of it. */
const RELEASED: ExchangeOwner = {
  mustClose: true,
  pauseBody() {},
  resumeBody() {},
  awaitSend() {},
  responseEnded() {},
  takeOver() {
    throw new Error('nsgi: the connection was already taken over');
  },
};

/** Request body bytes queued for the app before the socket stops being read. */
const BODY_HIGH_WATER = 64 * 1024;

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
export class RawExchange extends RequestAbort implements BodySource, ResponseSink, UpgradeSource {
  #conn: ExchangeOwner;
  readonly #socket: Socket;
  /** The client allows the connection to stay open after this exchange. */
  readonly #keepAlive: boolean;
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

  constructor(conn: ExchangeOwner, socket: Socket, head: RequestHead) {
    super();
    this.#conn = conn;
    this.#socket = socket;
    this.#keepAlive = head.keepAlive;
    this.bodyDone = head.bodyLength === 0;
    this.#http10 = head.httpVersion === '1.0';
  }

  takeOver(): { socket: Socket; head: Buffer } {
    this.ended = true;
    const taken = this.#conn.takeOver(this);
    // The connection (its parser, buffers, listeners) is garbage now, though this object lives on as
    // the request's abort state for as long as the socket is open.
    this.#conn = RELEASED;
    return taken;
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
    this.close = framing.close || !this.#keepAlive || this.#conn.mustClose;
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
