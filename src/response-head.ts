/** The rules start_response enforces on a status and header list, applied when it is called. */

import { describeValue } from './describe.js';
import { InterfaceError } from './errors.js';
import type { ResponseHeaders } from './types.js';

/** Three digits, exactly one space, then a reason phrase of visible characters (possibly empty). */
const STATUS_RE = /^([1-9][0-9]{2}) (?:[\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;
/** RFC 9110 token: a field name or a method. */
export const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 field-value restricted to latin-1: visible characters, SP, HTAB and obs-text. */
const FIELD_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DIGITS_RE = /^[0-9]+$/;

/** Headers that belong to the connection, not the message; an app must never set them. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
]);

/** A validated status and header list, with what the gateway needs to frame the body. */
export interface ResponseHead {
  code: number;
  reason: string;
  headers: ResponseHeaders;
  /** The app's Content-Length, if it gave one. */
  contentLength: number | undefined;
}

/** What a header name is, once checked; names repeat across responses, so the answer is cached. */
const enum NameKind {
  Plain,
  ContentLength,
  Invalid,
  HopByHop,
  Status,
}
const nameKinds = new Map<string, NameKind>();

function nameKind(name: string): NameKind {
  let kind = nameKinds.get(name);
  if (kind === undefined) {
    const lower = name.toLowerCase();
    kind = !TOKEN_RE.test(name)
      ? NameKind.Invalid
      : HOP_BY_HOP.has(lower)
        ? NameKind.HopByHop
        : lower === 'status'
          ? NameKind.Status
          : lower === 'content-length'
            ? NameKind.ContentLength
            : NameKind.Plain;
    if (nameKinds.size < 1024) nameKinds.set(name, kind);
  }
  return kind;
}

/** Short header values already found valid; responses repeat the same few ('text/plain', ...). */
const goodValues = new Set<string>();

function checkValue(value: string): boolean {
  if (!FIELD_VALUE_RE.test(value)) return false;
  if (value.length <= 64 && goodValues.size < 4096) goodValues.add(value);
  return true;
}

/** Valid status strings seen before, with their code and reason phrase. */
const statusCache = new Map<string, ParsedStatus>();
interface ParsedStatus {
  code: number;
  reason: string;
}

let lastStatus: ParsedStatus & { status: string } = { status: '200 OK', code: 200, reason: 'OK' };

function parseStatus(status: string): ParsedStatus {
  if (status === lastStatus.status) return lastStatus;
  const parsed = parseNewStatus(status);
  lastStatus = { status, code: parsed.code, reason: parsed.reason };
  return parsed;
}

function parseNewStatus(status: string): ParsedStatus {
  const cached = statusCache.get(status);
  if (cached !== undefined) return cached;
  const m = STATUS_RE.exec(status);
  if (m === null) {
    throw new InterfaceError(
      'ERR_NSGI_INVALID_STATUS',
      `start_response(): invalid status ${JSON.stringify(status)}: it must be three digits (100-999), ` +
        `one space and a reason phrase with no control characters or surrounding whitespace, e.g. '404 Not Found'`,
    );
  }
  const code = Number(m[1]);
  if (code < 200) {
    throw new InterfaceError(
      'ERR_NSGI_INFORMATIONAL_STATUS',
      `start_response(): ${JSON.stringify(status)} is an interim (1xx) status, which cannot be the final response; ` +
        `use a status of 200 or above`,
    );
  }
  const parsed = { code, reason: status.slice(4) };
  if (statusCache.size < 1024) statusCache.set(status, parsed);
  return parsed;
}

/** The kind of a header name, after checking the name and value; throws InterfaceError naming the fix. */
function checkHeader(name: string, value: string): NameKind {
  const kind = nameKind(name);
  if (kind === NameKind.Invalid) {
    throw new InterfaceError(
      'ERR_NSGI_INVALID_HEADER_NAME',
      `start_response(): invalid header name ${JSON.stringify(name)}: a name is a non-empty token ` +
        `(letters, digits and !#$%&'*+-.^_\`|~), with no spaces, colon or control characters`,
    );
  }
  if (!goodValues.has(value) && !checkValue(value)) {
    throw new InterfaceError(
      'ERR_NSGI_INVALID_HEADER_VALUE',
      `start_response(): invalid value for header ${JSON.stringify(name)}: ${JSON.stringify(value)}; ` +
        `values may not contain CR, LF or other control characters, and must be native strings ` +
        `(code points <= U+00FF; percent- or RFC 8187-encode other text)`,
    );
  }
  return kind;
}

/**
 * The headers of the last response, by position, already checked: apps send the same headers in the
 * same order response after response, and comparing the strings (often the very same ones) costs
 * less than the two lookups checking them again would.
 */
const memoNames: string[] = [];
const memoValues: string[] = [];
const memoKinds: NameKind[] = [];
const MEMO_POSITIONS = 32;

/** Validates `status` and `headers` as passed to start_response; throws InterfaceError naming the fix. */
export function parseResponseHead(status: unknown, headers: unknown): ResponseHead {
  if (typeof status !== 'string') {
    throw new InterfaceError(
      'ERR_NSGI_INVALID_STATUS',
      `start_response(): status must be a string like '200 OK', got ${describeValue(status)}`,
    );
  }
  const { code, reason } = parseStatus(status);
  if (!Array.isArray(headers)) {
    throw new InterfaceError(
      'ERR_NSGI_INVALID_HEADERS',
      `start_response(): headers must be an Array of [name, value] pairs, got ${describeValue(headers)}; ` +
        `write [['Content-Type', 'text/plain']] rather than an object map`,
    );
  }
  let contentLength: number | undefined;
  for (let i = 0; i < headers.length; i++) {
    const pair: unknown = headers[i];
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new InterfaceError(
        'ERR_NSGI_INVALID_HEADERS',
        `start_response(): header ${i} must be a [name, value] pair, got ${describeValue(pair)}`,
      );
    }
    const name: unknown = pair[0];
    const value: unknown = pair[1];
    if (typeof name !== 'string' || typeof value !== 'string') {
      throw new InterfaceError(
        'ERR_NSGI_INVALID_HEADERS',
        `start_response(): header ${i} name and value must both be strings, got [${describeValue(name)}, ${describeValue(value)}]; ` +
          `convert numbers with String()`,
      );
    }
    let kind: NameKind;
    if (i < MEMO_POSITIONS && memoNames[i] === name && memoValues[i] === value) kind = memoKinds[i]!;
    else {
      kind = checkHeader(name, value);
      if (i < MEMO_POSITIONS) {
        memoNames[i] = name;
        memoValues[i] = value;
        memoKinds[i] = kind;
      }
    }
    if (kind === NameKind.Plain) continue;
    if (kind === NameKind.HopByHop) {
      throw new InterfaceError(
        'ERR_NSGI_HOP_BY_HOP_HEADER',
        `start_response(): ${JSON.stringify(name)} is a hop-by-hop header, which belongs to the server: ` +
          `remove it (the server chooses Content-Length, chunked or close-delimited framing and keep-alive)`,
      );
    }
    if (kind === NameKind.Status) {
      throw new InterfaceError(
        'ERR_NSGI_INVALID_HEADER_NAME',
        `start_response(): 'Status' is not a response header; pass the status as the first argument`,
      );
    }
    const v = value.trim();
    if (!DIGITS_RE.test(v) || !Number.isSafeInteger(Number(v))) {
      throw new InterfaceError(
        'ERR_NSGI_INVALID_CONTENT_LENGTH',
        `start_response(): Content-Length must be a decimal number of bytes, got ${JSON.stringify(value)}`,
      );
    }
    if (contentLength !== undefined) {
      throw new InterfaceError(
        'ERR_NSGI_INVALID_CONTENT_LENGTH',
        `start_response(): Content-Length given twice; give it once`,
      );
    }
    contentLength = Number(v);
  }
  return { code, reason, headers: headers as ResponseHeaders, contentLength };
}
