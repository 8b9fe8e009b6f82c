/**
 * The rules of a request head (RFC 9112 §3, §6, §9.3; RFC 9110 §7.2, §10.1.1), one home for each:
 * the raw server's parser applies them to what it parsed, the environ builder to what any other
 * host's parser let through. Given the request line and the header fields that matter, they give
 * the body's framing, keep-alive and expect-continue, or the HttpError to answer.
 */

import { HttpError } from './errors.js';

/** reg-name characters of a Host (RFC 3986: unreserved, pct-encoded, sub-delims but ','). */
const REG_NAME = new Uint8Array(256);
for (let c = 0; c < 128; c++) if (/[A-Za-z0-9\-._~%!$&'()*+;=]/.test(String.fromCharCode(c))) REG_NAME[c] = 1;

const IP_LITERAL = /^[0-9A-Fa-f:.]+$|^v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/;

/**
 * True for a valid Host field value: `uri-host [ ":" port ]`, empty allowed (RFC 9112 §3.2, RFC 9110
 * §7.2). Userinfo, a path, a list, whitespace and a non-numeric port are not.
 */
export function isValidHost(v: string): boolean {
  const n = v.length;
  let i = 0;
  if (n > 0 && v.charCodeAt(0) === 0x5b /* [ */) {
    const close = v.indexOf(']');
    if (close < 2 || !IP_LITERAL.test(v.slice(1, close))) return false;
    i = close + 1;
    if (i === n) return true;
    if (v.charCodeAt(i) !== 0x3a) return false;
  } else {
    while (i < n && v.charCodeAt(i) !== 0x3a) {
      const c = v.charCodeAt(i);
      if (c > 127 || REG_NAME[c] !== 1) return false;
      i++;
    }
    if (i === n) return true;
  }
  for (i++; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * isValidHost() on bytes `s` to `e` of `b` (which are `value`), for a parser that has them: the common
 * forms (a name or IPv4 address, a port) on the bytes; an IP literal goes through isValidHost().
 */
export function isValidHostBytes(b: Uint8Array, s: number, e: number, value: string): boolean {
  let i = s;
  while (i < e && b[i] !== 0x3a) {
    if (REG_NAME[b[i]!] !== 1) return b[s] === 0x5b ? isValidHost(value) : false;
    i++;
  }
  for (i++; i < e; i++) if (b[i]! < 0x30 || b[i]! > 0x39) return b[s] === 0x5b ? isValidHost(value) : false;
  return true;
}

/** `uri-host ":" port` with the port given, the only target form CONNECT takes (RFC 9112 §3.2.3). */
export function isAuthorityForm(target: string): boolean {
  const colon = target.lastIndexOf(':');
  return colon > 0 && colon < target.length - 1 && colon > target.lastIndexOf(']') && isValidHost(target);
}

/**
 * CONNECT asks for a tunnel, which an origin server does not make: 501 for a well-formed one, 400
 * for one whose target is not in authority-form.
 */
export function connectError(target: string): HttpError {
  return isAuthorityForm(target)
    ? new HttpError(501, 'CONNECT is not supported: this is an origin server, not a proxy', { closeConnection: true })
    : new HttpError(
        400,
        `CONNECT needs an authority-form target (host:port), got ${JSON.stringify(target.slice(0, 100))}`,
        {
          closeConnection: true,
        },
      );
}

/** The error for a Host (or absolute-form authority) that is not `uri-host [ ":" port ]`. */
export function invalidHostError(value: string): HttpError {
  return new HttpError(400, `invalid Host ${JSON.stringify(value.slice(0, 100))}: expected host[:port]`, {
    closeConnection: true,
  });
}

/**
 * Checks a Transfer-Encoding field value (all lines joined with ", "). Returns undefined when the body
 * is chunked, else the error to answer with: 400 when chunked is missing, not final or repeated
 * (RFC 9112 §6.3 item 4, §6.1), 501 when another coding comes before it (none is implemented).
 * Empty list elements are ignored (RFC 9110 §5.6.1.2), so `, chunked` is chunked.
 */
export function transferEncodingError(value: string): HttpError | undefined {
  let chunkedAt = -1;
  let count = 0;
  let other: string | undefined;
  for (const raw of value.split(',')) {
    const coding = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (coding === '') continue;
    if (coding.toLowerCase() === 'chunked') {
      if (chunkedAt !== -1) return invalid(value, 'chunked is applied more than once');
      chunkedAt = count;
    } else {
      other ??= coding;
    }
    count++;
  }
  if (chunkedAt === -1 || chunkedAt !== count - 1) return invalid(value, 'chunked must be the final coding');
  if (other !== undefined) {
    return new HttpError(501, `unsupported transfer coding ${JSON.stringify(other)}; only chunked is implemented`, {
      closeConnection: true,
    });
  }
  return undefined;
}

function invalid(value: string, why: string): HttpError {
  return new HttpError(400, `invalid Transfer-Encoding ${JSON.stringify(value.slice(0, 100))}: ${why}`, {
    closeConnection: true,
  });
}

/**
 * Parses a Content-Length value: 1*DIGIT only (no sign, space, list or hex), digit by digit so that
 * values past 2^53 never wrap. Returns the length, or throws 400 (invalid) / 413 (above `max`).
 */
export function parseContentLength(value: string, max: number): number {
  const n = value.length;
  if (n === 0) throw new HttpError(400, 'empty Content-Length', { closeConnection: true });
  let length = 0;
  for (let i = 0; i < n; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9)
      throw new HttpError(400, `invalid Content-Length ${JSON.stringify(value.slice(0, 40))}`, {
        closeConnection: true,
      });
    length = length * 10 + d;
    if (length > max) {
      throw new HttpError(
        413,
        `request body of ${value.length > 20 ? 'more than 2^53' : value} bytes exceeds the limit of ${max} bytes`,
        {
          closeConnection: true,
        },
      );
    }
  }
  return length;
}

/** The target forms an origin server takes (RFC 9112 §3.2). */
export const enum TargetForm {
  /** `/path?query` */
  Origin,
  /** `http://host/path?query` */
  Absolute,
  /** `*` */
  Asterisk,
}

const ABSOLUTE_HTTP = /^https?:\/\//i;

/**
 * The target's form, each only with the methods allowed to use it (RFC 9112 §3.2): `*` with OPTIONS,
 * authority-form with CONNECT (which is refused, connectError), an absolute URI only with the http(s)
 * scheme. Throws HttpError (400, 501).
 */
export function targetForm(method: string, target: string): TargetForm {
  if (target.charCodeAt(0) === 0x2f /* / */ && method !== 'CONNECT') return TargetForm.Origin;
  return otherTargetForm(method, target);
}

/** targetForm() for a target that is not a path: apart, so the common case inlines. */
function otherTargetForm(method: string, target: string): TargetForm {
  if (method === 'CONNECT') throw connectError(target);
  if (target.charCodeAt(0) === 0x2f /* / */) return TargetForm.Origin;
  if (target === '*') {
    if (method !== 'OPTIONS') throw new HttpError(400, "asterisk-form target '*' is only valid for OPTIONS");
    return TargetForm.Asterisk;
  }
  if (!ABSOLUTE_HTTP.test(target)) {
    throw new HttpError(
      400,
      `invalid request-target ${JSON.stringify(target.slice(0, 100))}: expected a path starting with "/" or an absolute http(s) URI`,
    );
  }
  return TargetForm.Absolute;
}

/** A request-target over the server's limit (a target is one byte per character here). */
export function targetTooLongError(max: number): HttpError {
  return new HttpError(414, `request-target longer than ${max} bytes`);
}

/** A field that may appear once appeared again (Host, Content-Length: RFC 9112 §3.2, §6.3; Content-Type). */
export function repeatedFieldError(name: 'Host' | 'Content-Length' | 'Content-Type'): HttpError {
  // A second Content-Type says nothing of framing: the connection can stay.
  return new HttpError(400, `more than one ${name} header`, { closeConnection: name !== 'Content-Type' });
}

/** The header fields that decide a head's framing, as a host's parser gathered them. */
export interface HeadFields {
  /** HTTP/1.1 or a higher 1.x minor (false for HTTP/1.0). */
  http11: boolean;
  /** A Host field was present (its value checked with checkHost() as it was read). */
  hasHost: boolean;
  /** The Content-Length value (one field: a repeat is refused as it is read). */
  contentLength: string | undefined;
  /** Every Transfer-Encoding line, joined with ", ". */
  transferEncoding: string | undefined;
  /** Every Expect line, joined with ", ". */
  expect: string | undefined;
}

/** What the head says of the message that follows. */
export interface HeadFraming {
  /** The declared body length, 0 without a body, or null for a chunked body. */
  readonly bodyLength: number | null;
  /** An HTTP/1.1 request with a body and `Expect: 100-continue`. */
  readonly expectContinue: boolean;
}

/** The framing of nearly every request: no body (shared, as most heads settle to it). */
const NO_BODY: HeadFraming = Object.freeze({ bodyLength: 0, expectContinue: false });

/**
 * The body framing of a head (RFC 9112 §6): chunked XOR Content-Length; Host required on HTTP/1.1;
 * Transfer-Encoding only on HTTP/1.1, with chunked final; `Expect` only `100-continue` (417).
 * Throws HttpError (400, 413, 417, 501).
 */
export function settleFraming(f: HeadFields, maxBodySize: number): HeadFraming {
  if (f.http11 && !f.hasHost) throw new HttpError(400, 'request without a Host header', { closeConnection: true });
  if (f.transferEncoding === undefined && f.contentLength === undefined && f.expect === undefined) return NO_BODY;
  return bodyFraming(f, maxBodySize);
}

/** settleFraming() for a head that declares a body or an expectation: apart, so the common case inlines. */
function bodyFraming(f: HeadFields, maxBodySize: number): HeadFraming {
  let bodyLength: number | null = 0;
  if (f.transferEncoding !== undefined) {
    if (f.contentLength !== undefined) {
      throw new HttpError(400, 'both Transfer-Encoding and Content-Length', { closeConnection: true });
    }
    if (!f.http11) throw new HttpError(400, 'Transfer-Encoding in an HTTP/1.0 request', { closeConnection: true });
    const err = transferEncodingError(f.transferEncoding);
    if (err !== undefined) throw err;
    bodyLength = null;
  } else if (f.contentLength !== undefined) {
    bodyLength = parseContentLength(f.contentLength, maxBodySize);
  }
  let expectContinue = false;
  if (f.expect !== undefined && f.http11) {
    if (f.expect.toLowerCase() !== '100-continue') {
      throw new HttpError(417, `unsupported expectation ${JSON.stringify(f.expect.slice(0, 100))}`);
    }
    expectContinue = bodyLength !== 0;
  }
  return bodyLength === 0 ? NO_BODY : { bodyLength, expectContinue };
}

/** The last Host value checkHost() accepted: a client sends the same one request after request. */
let lastValidHost = '';

/** Throws 400 (closing) unless `value` is a valid Host (isValidHost). */
export function checkHost(value: string): void {
  if (value === lastValidHost) return;
  if (!isValidHost(value)) throw invalidHostError(value);
  lastValidHost = value;
}

/** The connection options of a Connection field value that decide persistence. */
export interface ConnectionOptions {
  close: boolean;
  keepAlive: boolean;
}

/** Notes `close` and `keep-alive` among the comma-separated options of a Connection value, into `into`. */
export function noteConnection(value: string, into: ConnectionOptions): void {
  if (value === 'keep-alive') into.keepAlive = true;
  else if (value === 'close') into.close = true;
  else
    for (const token of value.split(',')) {
      const t = token.trim().toLowerCase();
      if (t === 'close') into.close = true;
      else if (t === 'keep-alive') into.keepAlive = true;
    }
}

/** Whether the connection may stay open after this exchange (RFC 9112 §9.3). */
export function keepsAlive(http11: boolean, options: ConnectionOptions): boolean {
  return !options.close && (http11 || options.keepAlive);
}
