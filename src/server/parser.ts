/**
 * An incremental HTTP/1.1 request parser (RFC 9112), strict: it works on bytes, never on decoded
 * text, takes no robustness exception but leading empty lines, and refuses anything else with the
 * status a hardened server gives. It knows nothing of sockets: feed it bytes in pieces of any size,
 * and it reports each request's head, its de-framed body and its end, in order.
 */

import { Buffer } from 'node:buffer';
import { HttpError } from '../errors.js';
import {
  invalidHostError,
  isValidHostBytes,
  keepsAlive,
  noteConnection,
  repeatedFieldError,
  settleFraming,
  targetForm,
  targetTooLongError,
  type ConnectionOptions,
  type HeadFields,
} from '../request-head.js';

export interface ParserLimits {
  /** Longest request-target, in bytes (414 above). */
  maxRequestTarget: number;
  /** Largest header section (request line and fields, or trailer section), in bytes (431 above). */
  maxHeaderSize: number;
  /** Most header (or trailer) field lines (431 above). */
  maxHeaderCount: number;
  /** Largest request body, declared or chunked (413 above). */
  maxBodySize: number;
  /** Longest run of chunk extensions on one chunk line, in bytes (413 above). */
  maxChunkExtension: number;
}

export const DEFAULT_PARSER_LIMITS: Readonly<ParserLimits> = Object.freeze({
  maxRequestTarget: 8192,
  maxHeaderSize: 16 * 1024,
  maxHeaderCount: 128,
  maxBodySize: 1024 * 1024 * 1024,
  maxChunkExtension: 1024,
});

/** A parsed request line and header section. */
export interface RequestHead {
  /** The method token, case kept. */
  method: string;
  /** The request-target, one character per byte. */
  target: string;
  /** `'1.1'` (also for a higher 1.x minor) or `'1.0'`. */
  httpVersion: '1.0' | '1.1';
  /** `[name0, value0, name1, value1, ...]`, in order, duplicates kept, values without surrounding whitespace. */
  rawHeaders: string[];
  /** The declared Content-Length, 0 when there is no body, or null for a chunked body. */
  bodyLength: number | null;
  /** Whether the client allows the connection to stay open after this exchange (RFC 9112 §9.3). */
  keepAlive: boolean;
  /** An HTTP/1.1 request with a body and `Expect: 100-continue`. */
  expectContinue: boolean;
}

export interface ParserHandler {
  onHead(head: RequestHead): void;
  /** A piece of the de-framed body; a view into the bytes fed, valid as long as they are. */
  onBody(chunk: Buffer): void;
  /** The message is complete; `trailers` are the trailer fields of a chunked body (never merged into the head). */
  onComplete(trailers: string[]): void;
}

/** A request the parser refuses: answer `status`, then close the connection. */
export class ParseError extends HttpError {
  constructor(status: number, message: string) {
    super(status, message, { closeConnection: true, code: 'ERR_NSGI_BAD_REQUEST' });
    this.name = 'ParseError';
  }
}

const enum State {
  Head,
  Length,
  ChunkLine,
  ChunkData,
  ChunkDataCR,
  ChunkDataLF,
  Trailers,
}

/** Positions inside a chunk line (size, then extensions, then CRLF). */
const enum Chunk {
  Size,
  SizeWS,
  ExtPreName,
  ExtName,
  ExtPostName,
  ExtPreValue,
  ExtToken,
  ExtQuoted,
  ExtQuotedEscape,
  ExtAfterQuote,
  ExtPostValue,
  LF,
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

/** tchar (RFC 9110 §5.6.2). */
const TCHAR = new Uint8Array(256);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9!#$%&'*+\-.^_`|~]/.test(ch)) TCHAR[c] = 1;
}
/** Bytes a request-target may hold: visible ASCII (a fragment, which clients should not send, is passed on and removed by the environ builder). */
const TARGET = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) TARGET[c] = 1;
/** Bytes a field value may hold besides SP/HTAB: VCHAR and obs-text (RFC 9110 §5.5). */
const FIELD_VCHAR = new Uint8Array(256);
for (let c = 0x21; c < 256; c++) if (c !== 0x7f) FIELD_VCHAR[c] = 1;
/** Hex digit values, -1 for anything else. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX[0x41 + c] = HEX[0x61 + c] = 10 + c;

const EMPTY_TRAILERS: string[] = [];
/** Bytes decoded at first when looking for the lines of a head or trailer section. */
const HEAD_WINDOW = 1024;

type Latin1 = { latin1Slice(start: number, end: number): string };
/** The bytes as a native string, one character per byte (Buffer's own fast path). */
function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1).latin1Slice(start, end);
}

/** The common methods as shared strings (cheaper than slicing, and the core compares them by identity). */
function methodOf(b: Buffer, s: number, e: number): string {
  const n = e - s;
  if (n === 3 && b[s] === 0x47 && b[s + 1] === 0x45 && b[s + 2] === 0x54) return 'GET';
  if (n === 4 && b[s + 1] === 0x4f && b[s + 2] === 0x53 && b[s + 3] === 0x54 && b[s] === 0x50) return 'POST';
  if (n === 4 && b[s] === 0x48 && b[s + 1] === 0x45 && b[s + 2] === 0x41 && b[s + 3] === 0x44) return 'HEAD';
  return latin1(b, s, e);
}

function bad(message: string): ParseError {
  return new ParseError(400, message);
}

/** A request-head rule's HttpError as the parser reports it. */
function asParseError(err: unknown): unknown {
  return err instanceof HttpError && !(err instanceof ParseError) ? new ParseError(err.status, err.message) : err;
}

/** `name` equals the lower-case token `lower` ignoring ASCII case, without allocating. */
function lowerEquals(name: string, lower: string): boolean {
  const n = lower.length;
  if (name.length !== n) return false;
  // Setting bit 0x20 lowers A-Z; no other tchar maps onto a letter or '-' that way.
  for (let i = 0; i < n; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

export class RequestParser {
  readonly #limits: ParserLimits;
  readonly #handler: ParserHandler;
  readonly #maxRequestLine: number;
  /** The most bytes a head or trailer section can span before a limit refuses it. */
  readonly #maxSection: number;

  #state = State.Head;
  /** Bytes of an incomplete line (head or trailers), waiting for the rest. */
  #pending: Buffer | undefined = undefined;
  /** Bytes of the current header or trailer section so far. */
  #sectionSize = 0;

  // The request being read.
  #method = '';
  #target = '';
  #version: '1.0' | '1.1' = '1.1';
  #sawRequestLine = false;
  #raw: string[] = [];
  /** The section being parsed, decoded once: bytes #textStart to #textEnd of the current buffer. */
  #text = '';
  #textStart = 0;
  #textEnd = 0;
  /** The buffer #text was decoded from, while its bytes stand (see execute()). */
  #textBuf: Buffer | undefined = undefined;
  // What the fields parsed so far say about framing and persistence.
  readonly #fields: HeadFields = {
    http11: true,
    hasHost: false,
    contentLength: undefined,
    transferEncoding: undefined,
    expect: undefined,
  };
  readonly #connection: ConnectionOptions = { close: false, keepAlive: false };

  // Body.
  #remaining = 0;
  #received = 0;
  #chunk = Chunk.Size;
  #chunkSize = 0;
  #extLength = 0;
  /** Hex digits of the current chunk size seen so far. */
  #sizeDigits = 0;
  #trailers: string[] = EMPTY_TRAILERS;

  constructor(limits: ParserLimits, handler: ParserHandler) {
    this.#limits = limits;
    this.#handler = handler;
    // method (a token well past any real one), two spaces, the target, "HTTP/x.y".
    this.#maxRequestLine = limits.maxRequestTarget + 64;
    this.#maxSection = Math.max(limits.maxHeaderSize, this.#maxRequestLine) + 2;
  }

  /** The caller is done with the buffer it passed: the text decoded from it is not reused. */
  doneWith(): void {
    this.#textBuf = undefined;
  }

  /** True between messages with no byte of the next one received. */
  get idle(): boolean {
    return this.#state === State.Head && !this.#sawRequestLine && this.#pending === undefined;
  }

  /** The request line of the head being parsed, once it has been read (for logging a refusal). */
  get requestLine(): { method: string; target: string; httpVersion: '1.0' | '1.1' } | undefined {
    return this.#sawRequestLine
      ? { method: this.#method, target: this.#target, httpVersion: this.#version }
      : undefined;
  }

  /** True while a request's head has been parsed and its body is still arriving. */
  get inBody(): boolean {
    return this.#state !== State.Head;
  }

  /**
   * Parses `buf` from `start`. Returns where it stopped: the end of `buf`, or just past a complete
   * message (so the caller can hold the next one until the response is done). Throws ParseError.
   * Called again with the same `buf` (pipelined requests), it reuses what it decoded of it: the
   * caller calls doneWith() before those bytes can change.
   */
  execute(buf: Buffer, start = 0): number {
    let off = start;
    /** Offset in `buf` minus offset in the caller's buffer. */
    let shift = 0;
    const pending = this.#pending;
    if (pending !== undefined) {
      // Only ever the bytes of one unfinished line; joining it with what follows keeps lines whole.
      this.#pending = undefined;
      shift = pending.length - start;
      buf = Buffer.concat([pending, buf.subarray(start)]);
      off = 0;
    }
    const end = buf.length;
    while (off < end) {
      switch (this.#state) {
        case State.Head:
        case State.Trailers: {
          const next = this.#lines(buf, off);
          if (next < 0) return end - shift; // all taken; an unfinished line waits in #pending
          off = next;
          if (this.#state === State.Head) return off - shift; // a message completed
          break;
        }
        case State.Length: {
          const n = Math.min(this.#remaining, end - off);
          this.#remaining -= n;
          this.#handler.onBody(buf.subarray(off, off + n));
          off += n;
          if (this.#remaining === 0) {
            this.#complete(EMPTY_TRAILERS);
            return off - shift;
          }
          break;
        }
        case State.ChunkLine:
          off = this.#chunkLine(buf, off, end);
          break;
        case State.ChunkData: {
          const n = Math.min(this.#remaining, end - off);
          this.#remaining -= n;
          this.#handler.onBody(buf.subarray(off, off + n));
          off += n;
          if (this.#remaining === 0) this.#state = State.ChunkDataCR;
          break;
        }
        case State.ChunkDataCR:
          if (buf[off] !== CR) throw bad('chunk data longer than its size, or not followed by CRLF');
          off++;
          this.#state = State.ChunkDataLF;
          break;
        case State.ChunkDataLF:
          if (buf[off] !== LF) throw bad('chunk data not followed by CRLF');
          off++;
          this.#state = State.ChunkLine;
          this.#chunk = Chunk.Size;
          this.#chunkSize = 0;
          this.#sizeDigits = 0;
          this.#extLength = 0;
          break;
      }
    }
    return off - shift;
  }

  /**
   * Takes complete lines of the head or trailer section from `off`. Returns the offset after the
   * section's empty line, or -1 when `buf` ended inside the section (the unfinished line is kept).
   */
  #lines(buf: Buffer, off: number): number {
    const trailers = this.#state === State.Trailers;
    // One decode of (at most a section's worth of) the bytes, then lines are found and cut in the
    // string: every Buffer call (indexOf, toString) crosses into C++, which costs more than the
    // string operations it would save.
    // Most heads fit the first window; a body that follows is not decoded with them.
    let base = off;
    let textEnd = Math.min(buf.length, off + HEAD_WINDOW);
    let text: string;
    if (buf === this.#textBuf && off >= this.#textStart && off < this.#textEnd) {
      // The next pipelined request, already decoded with the one before it.
      base = this.#textStart;
      textEnd = this.#textEnd;
      text = this.#text;
    } else {
      text = latin1(buf, off, textEnd);
      this.#text = text;
      this.#textStart = base;
      this.#textEnd = textEnd;
      this.#textBuf = buf;
    }
    for (;;) {
      let lf = text.indexOf('\n', off - base);
      if (lf === -1 && textEnd < buf.length && textEnd < base + this.#maxSection) {
        textEnd = Math.min(buf.length, base + this.#maxSection);
        this.#text = text = latin1(buf, base, textEnd);
        this.#textEnd = textEnd;
        lf = text.indexOf('\n', off - base);
      }
      if (lf !== -1) lf += base;
      else if (textEnd < buf.length) lf = buf.indexOf(LF, Math.max(off, textEnd));
      if (lf === -1) {
        this.#keep(buf, off, trailers);
        return -1;
      }
      if (lf === off || buf[lf - 1] !== CR) throw bad('bare LF: lines must end with CRLF');
      const e = lf - 1;
      this.#sectionSize += lf + 1 - off;
      if (this.#sectionSize > this.#limits.maxHeaderSize && (trailers || this.#sawRequestLine)) {
        throw new ParseError(
          431,
          `${trailers ? 'trailer' : 'header'} section larger than ${this.#limits.maxHeaderSize} bytes`,
        );
      }
      if (e === off) {
        // An empty line: ends the section, or (before the request line) is ignored (RFC 9112 §2.2).
        if (trailers) {
          checkTrailers(this.#trailers);
          this.#complete(this.#trailers);
          return lf + 1;
        }
        if (this.#sawRequestLine) {
          this.#finishHead();
          return lf + 1;
        }
        if (this.#sectionSize > this.#limits.maxHeaderSize) throw bad('too many empty lines before the request line');
      } else if (!trailers && !this.#sawRequestLine) {
        this.#requestLine(buf, off, e);
      } else {
        const into = trailers ? this.#trailers : this.#raw;
        if (into.length >= this.#limits.maxHeaderCount * 2) {
          throw new ParseError(
            431,
            `more than ${this.#limits.maxHeaderCount} ${trailers ? 'trailer' : 'header'} fields`,
          );
        }
        this.#field(buf, off, e, into);
      }
      off = lf + 1;
    }
  }

  /** Keeps an unfinished line for the next call, refusing it once it can no longer fit its limit. */
  #keep(buf: Buffer, off: number, trailers: boolean): void {
    const n = buf.length - off;
    if (n === 0) return;
    if (!trailers && !this.#sawRequestLine) {
      if (n > this.#maxRequestLine) {
        const sp = buf.indexOf(SP, off);
        if (sp !== -1 && sp - off < 64) throw asParseError(targetTooLongError(this.#limits.maxRequestTarget));
        throw bad('request line too long');
      }
    } else if (this.#sectionSize + n > this.#limits.maxHeaderSize) {
      throw new ParseError(
        431,
        `${trailers ? 'trailer' : 'header'} section larger than ${this.#limits.maxHeaderSize} bytes`,
      );
    }
    this.#checkUnfinished(buf, off, trailers);
    // A copy: holding a view would pin the whole socket read buffer.
    this.#pending = Buffer.from(buf.subarray(off));
  }

  /**
   * Refuses an unfinished line (no LF yet) as soon as its bytes can no longer begin a valid one,
   * with the status its whole line would get, so a malformed request is answered at once instead of
   * after the header timeout. A CR is allowed only as the last byte: anything after it but LF is a
   * bare CR (RFC 9112 §2.2).
   */
  #checkUnfinished(b: Buffer, s: number, trailers: boolean): void {
    const end = b.length;
    let e = b.indexOf(CR, s);
    if (e === -1) e = end;
    if (!trailers && !this.#sawRequestLine) checkRequestLinePrefix(b, s, e, this.#limits.maxRequestTarget);
    else if (e > s) {
      const into = trailers ? this.#trailers : this.#raw;
      if (into.length >= this.#limits.maxHeaderCount * 2) {
        throw new ParseError(431, `more than ${this.#limits.maxHeaderCount} ${trailers ? 'trailer' : 'header'} fields`);
      }
      checkFieldPrefix(b, s, e);
    }
    if (e < end - 1) throw bad('bare CR: lines must end with CRLF');
  }

  /** Bytes `s` to `e` of the section as a native string. */
  #slice(b: Buffer, s: number, e: number): string {
    const base = this.#textStart;
    if (s >= base && e <= this.#textEnd) return this.#text.slice(s - base, e - base);
    return latin1(b, s, e);
  }

  /** `method SP request-target SP HTTP-version`, exactly (RFC 9112 §3). */
  #requestLine(b: Buffer, s: number, e: number): void {
    let i = s;
    while (i < e && TCHAR[b[i]!] === 1) i++;
    if (i === s) throw bad(b[s] === SP || b[s] === HTAB ? 'whitespace before the request line' : 'invalid method');
    if (i === e || b[i] !== SP) throw bad('invalid method');
    const method = methodOf(b, s, i);
    const t = ++i;
    while (i < e && TARGET[b[i]!] === 1) i++;
    if (i === t) throw bad('empty request-target or extra whitespace in the request line');
    if (i - t > this.#limits.maxRequestTarget) throw asParseError(targetTooLongError(this.#limits.maxRequestTarget));
    if (i === e) throw bad('request line without an HTTP version');
    if (b[i] !== SP) throw bad('invalid byte in the request-target');
    const target = this.#slice(b, t, i);
    i++;
    const major = b[i + 5]! - 0x30;
    const minor = b[i + 7]! - 0x30;
    if (
      e - i !== 8 ||
      b[i] !== 0x48 ||
      b[i + 1] !== 0x54 ||
      b[i + 2] !== 0x54 ||
      b[i + 3] !== 0x50 ||
      b[i + 4] !== 0x2f ||
      b[i + 6] !== 0x2e ||
      !(major >= 0 && major <= 9) ||
      !(minor >= 0 && minor <= 9)
    ) {
      throw bad('invalid HTTP version (expected HTTP/1.1 or HTTP/1.0)');
    }
    if (major !== 1) throw new ParseError(505, `HTTP/${major}.${minor} is not supported; use HTTP/1.1`);
    this.#version = minor === 0 ? '1.0' : '1.1';
    try {
      targetForm(method, target);
    } catch (err) {
      throw asParseError(err);
    }
    this.#method = method;
    this.#target = target;
    this.#sawRequestLine = true;
  }

  /** `field-name ":" OWS field-value OWS` (RFC 9112 §5). */
  #field(b: Buffer, s: number, e: number, into: string[]): void {
    let i = s;
    while (i < e && TCHAR[b[i]!] === 1) i++;
    if (i === s) {
      throw bad(
        b[s] === SP || b[s] === HTAB ? 'obsolete line folding or whitespace before a field name' : 'invalid field name',
      );
    }
    if (i === e || b[i] !== 0x3a) {
      throw bad(
        b[i] === SP || b[i] === HTAB ? 'whitespace between a field name and the colon' : 'invalid byte in a field name',
      );
    }
    const name = this.#slice(b, s, i);
    i++;
    while (i < e && (b[i] === SP || b[i] === HTAB)) i++;
    let ve = e;
    while (ve > i && (b[ve - 1] === SP || b[ve - 1] === HTAB)) ve--;
    for (let k = i; k < ve; k++) {
      const c = b[k]!;
      if (FIELD_VCHAR[c] !== 1 && c !== SP && c !== HTAB) {
        throw bad(`invalid byte 0x${c.toString(16).padStart(2, '0')} in the value of ${name}`);
      }
    }
    const value = this.#slice(b, i, ve);
    into.push(name, value);
    if (into === this.#raw) {
      // Host is in every request: checked on the bytes, ahead of the general switch.
      if (name.length === 4 && lowerEquals(name, 'host')) {
        if (this.#fields.hasHost) throw asParseError(repeatedFieldError('Host'));
        this.#fields.hasHost = true;
        if (!isValidHostBytes(b, i, ve, value)) throw asParseError(invalidHostError(value));
      } else {
        this.#note(name, value);
      }
    }
  }

  /** Gathers the fields the request-head rules decide on, as they are parsed. */
  #note(name: string, value: string): void {
    const f = this.#fields;
    switch (name.length) {
      case 14:
        if (lowerEquals(name, 'content-length')) {
          if (f.contentLength !== undefined) throw asParseError(repeatedFieldError('Content-Length'));
          f.contentLength = value;
        }
        return;
      case 17:
        if (lowerEquals(name, 'transfer-encoding')) {
          f.transferEncoding = f.transferEncoding === undefined ? value : `${f.transferEncoding}, ${value}`;
        }
        return;
      case 10:
        if (lowerEquals(name, 'connection')) noteConnection(value, this.#connection);
        return;
      case 6:
        if (lowerEquals(name, 'expect')) f.expect = f.expect === undefined ? value : `${f.expect}, ${value}`;
        return;
    }
  }

  /** Applies the request-head rules to the fields gathered, then reports the head. */
  #finishHead(): void {
    const raw = this.#raw;
    const f = this.#fields;
    const connection = this.#connection;
    f.http11 = this.#version === '1.1';
    let framing;
    try {
      framing = settleFraming(f, this.#limits.maxBodySize);
    } catch (err) {
      throw asParseError(err);
    } finally {
      f.hasHost = false;
      f.contentLength = f.transferEncoding = f.expect = undefined;
    }
    const { bodyLength, expectContinue } = framing;
    const keepAlive = keepsAlive(f.http11, connection);
    connection.close = connection.keepAlive = false;
    const head: RequestHead = {
      method: this.#method,
      target: this.#target,
      httpVersion: this.#version,
      rawHeaders: raw,
      bodyLength,
      keepAlive,
      expectContinue,
    };
    this.#raw = [];
    this.#sawRequestLine = false;
    this.#sectionSize = 0;
    this.#received = 0;
    if (bodyLength === null) {
      this.#state = State.ChunkLine;
      this.#chunk = Chunk.Size;
      this.#chunkSize = 0;
      this.#sizeDigits = 0;
      this.#extLength = 0;
      this.#trailers = EMPTY_TRAILERS;
    } else if (bodyLength > 0) {
      this.#state = State.Length;
      this.#remaining = bodyLength;
    }
    this.#handler.onHead(head);
    if (bodyLength === 0) this.#handler.onComplete(EMPTY_TRAILERS);
  }

  #complete(trailers: string[]): void {
    this.#state = State.Head;
    this.#sectionSize = 0;
    this.#trailers = EMPTY_TRAILERS;
    this.#handler.onComplete(trailers);
  }

  /** `chunk-size [ chunk-ext ] CRLF` (RFC 9112 §7.1), byte by byte so it may arrive in any pieces. */
  #chunkLine(b: Buffer, off: number, end: number): number {
    let st = this.#chunk;
    let size = this.#chunkSize;
    const max = this.#limits.maxBodySize - this.#received;
    while (off < end) {
      const c = b[off++]!;
      if (st >= Chunk.SizeWS && st <= Chunk.ExtPostValue && ++this.#extLength > this.#limits.maxChunkExtension) {
        throw new ParseError(413, `chunk extensions longer than ${this.#limits.maxChunkExtension} bytes`);
      }
      switch (st) {
        case Chunk.Size: {
          const d = HEX[c]!;
          if (d >= 0) {
            size = size * 16 + d;
            if (size > max)
              throw new ParseError(413, `request body exceeds the limit of ${this.#limits.maxBodySize} bytes`);
            this.#sizeDigits++;
            continue;
          }
          if (this.#sizeDigits === 0) throw bad('invalid chunk size');
          if (c === CR) st = Chunk.LF;
          else if (c === 0x3b) st = Chunk.ExtPreName;
          else if (c === SP || c === HTAB) st = Chunk.SizeWS;
          else throw bad('invalid chunk size');
          continue;
        }
        case Chunk.SizeWS:
          if (c === 0x3b) st = Chunk.ExtPreName;
          else if (c !== SP && c !== HTAB) throw bad('whitespace after a chunk size must lead to an extension');
          continue;
        case Chunk.ExtPreName:
          if (TCHAR[c] === 1) st = Chunk.ExtName;
          else if (c !== SP && c !== HTAB) throw bad('invalid chunk extension');
          continue;
        case Chunk.ExtName:
          if (TCHAR[c] === 1) continue;
          if (c === 0x3d) st = Chunk.ExtPreValue;
          else if (c === 0x3b) st = Chunk.ExtPreName;
          else if (c === SP || c === HTAB) st = Chunk.ExtPostName;
          else if (c === CR) st = Chunk.LF;
          else throw bad('invalid chunk extension');
          continue;
        case Chunk.ExtPostName:
          if (c === 0x3d) st = Chunk.ExtPreValue;
          else if (c === 0x3b) st = Chunk.ExtPreName;
          else if (c !== SP && c !== HTAB) throw bad('invalid chunk extension');
          continue;
        case Chunk.ExtPreValue:
          if (c === 0x22) st = Chunk.ExtQuoted;
          else if (TCHAR[c] === 1) st = Chunk.ExtToken;
          else if (c !== SP && c !== HTAB) throw bad('invalid chunk extension value');
          continue;
        case Chunk.ExtToken:
          if (TCHAR[c] === 1) continue;
          if (c === 0x3b) st = Chunk.ExtPreName;
          else if (c === SP || c === HTAB) st = Chunk.ExtPostValue;
          else if (c === CR) st = Chunk.LF;
          else throw bad('invalid chunk extension value');
          continue;
        case Chunk.ExtQuoted:
          if (c === 0x22) st = Chunk.ExtAfterQuote;
          else if (c === 0x5c) st = Chunk.ExtQuotedEscape;
          else if (c < 0x20 ? c !== HTAB : c === 0x7f) throw bad('invalid byte in a quoted chunk extension');
          continue;
        case Chunk.ExtQuotedEscape:
          if (c < 0x20 ? c !== HTAB : c === 0x7f) throw bad('invalid escape in a quoted chunk extension');
          st = Chunk.ExtQuoted;
          continue;
        case Chunk.ExtAfterQuote:
          if (c === 0x3b) st = Chunk.ExtPreName;
          else if (c === SP || c === HTAB) st = Chunk.ExtPostValue;
          else if (c === CR) st = Chunk.LF;
          else throw bad('invalid chunk extension');
          continue;
        case Chunk.ExtPostValue:
          if (c === 0x3b) st = Chunk.ExtPreName;
          else if (c !== SP && c !== HTAB) throw bad('invalid chunk extension');
          continue;
        case Chunk.LF:
          if (c !== LF) throw bad('bare CR in a chunk line');
          this.#received += size;
          if (size === 0) {
            this.#state = State.Trailers;
            this.#trailers = [];
            this.#sectionSize = 0;
          } else {
            this.#state = State.ChunkData;
            this.#remaining = size;
          }
          return off;
      }
    }
    this.#chunk = st;
    this.#chunkSize = size;
    return off;
  }
}

/**
 * Throws what #requestLine would for any line that begins with bytes `s` to `e`: the checks it makes
 * in its order, stopping where the bytes run out. 505 needs the whole version, so it is left to it.
 */
function checkRequestLinePrefix(b: Buffer, s: number, e: number, maxTarget: number): void {
  let i = s;
  while (i < e && TCHAR[b[i]!] === 1) i++;
  if (i === e) return;
  if (i === s) throw bad(b[s] === SP || b[s] === HTAB ? 'whitespace before the request line' : 'invalid method');
  if (b[i] !== SP) throw bad('invalid method');
  const t = ++i;
  while (i < e && TARGET[b[i]!] === 1) i++;
  if (i === e && i - t <= maxTarget) return;
  if (i === t) throw bad('empty request-target or extra whitespace in the request line');
  if (i - t > maxTarget) throw asParseError(targetTooLongError(maxTarget));
  if (b[i] !== SP) throw bad('invalid byte in the request-target');
  i++;
  const version = 'HTTP/d.d';
  for (let k = 0; i + k < e; k++) {
    const c = b[i + k]!;
    const ok = k >= version.length ? false : k === 5 || k === 7 ? c >= 0x30 && c <= 0x39 : c === version.charCodeAt(k);
    if (!ok) throw bad('invalid HTTP version (expected HTTP/1.1 or HTTP/1.0)');
  }
}

/** Throws what #field would for any line that begins with bytes `s` to `e`. */
function checkFieldPrefix(b: Buffer, s: number, e: number): void {
  let i = s;
  while (i < e && TCHAR[b[i]!] === 1) i++;
  if (i === e) return;
  if (i === s)
    throw bad(
      b[s] === SP || b[s] === HTAB ? 'obsolete line folding or whitespace before a field name' : 'invalid field name',
    );
  if (b[i] !== 0x3a)
    throw bad(
      b[i] === SP || b[i] === HTAB ? 'whitespace between a field name and the colon' : 'invalid byte in a field name',
    );
  for (i++; i < e; i++) {
    const c = b[i]!;
    if (FIELD_VCHAR[c] !== 1 && c !== SP && c !== HTAB)
      throw bad(`invalid byte 0x${c.toString(16).padStart(2, '0')} in a field value`);
  }
}

/** Framing and routing fields may not appear in a trailer section (RFC 9110 §6.5.1). */
function checkTrailers(trailers: readonly string[]): void {
  for (let i = 0; i < trailers.length; i += 2) {
    const name = trailers[i]!.toLowerCase();
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'host') {
      throw bad(`${trailers[i]} is not allowed in a trailer section`);
    }
  }
}
