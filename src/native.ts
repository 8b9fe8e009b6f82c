/** Native strings: one character per byte (latin-1), the form every CGI value and header takes. */

import { Buffer } from 'node:buffer';
import type { NativeString } from './types.js';

// eslint-disable-next-line no-control-regex -- a native string is any run of U+0000..U+00FF
const NON_NATIVE = /[^\x00-\xff]/;

/** True when every code unit of `s` is <= 0xFF. */
export function isNative(s: string): boolean {
  return !NON_NATIVE.test(s);
}

/** Re-reads a native string's bytes as UTF-8: `decodeNative('/caf\u00c3\u00a9') === '/café'`. */
export function decodeNative(s: NativeString): string {
  return Buffer.from(s, 'latin1').toString('utf8');
}

/** Encodes a Unicode string as UTF-8 and returns those bytes as a native string. */
export function encodeNative(s: string): NativeString {
  return Buffer.from(s, 'utf8').toString('latin1');
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * Percent-decodes a native string to bytes and returns them as a native string, losslessly:
 * `%FF` becomes U+00FF, `+` stays `+`, and a malformed escape such as `%zz` is kept as it is.
 */
export function percentDecodeNative(s: string): NativeString {
  let i = s.indexOf('%');
  if (i === -1) return s;
  let out = s.slice(0, i);
  let start = i;
  while (i < s.length) {
    if (s.charCodeAt(i) === 0x25 /* % */ && i + 2 < s.length) {
      const hi = hexValue(s.charCodeAt(i + 1));
      const lo = hexValue(s.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        out += s.slice(start, i) + String.fromCharCode((hi << 4) | lo);
        i += 3;
        start = i;
        continue;
      }
    }
    i++;
  }
  return out + s.slice(start);
}

const UNRESERVED_PATH = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g;

/** Percent-encodes a native string for use in a URL path (the inverse of percentDecodeNative). */
export function quoteNativePath(s: NativeString): string {
  return s.replace(UNRESERVED_PATH, (c) => {
    const code = c.charCodeAt(0);
    if (code > 0xff) throw new RangeError('quoteNativePath() takes a native string (code units <= 0xFF)');
    return '%' + (code < 16 ? '0' : '') + code.toString(16).toUpperCase();
  });
}

/**
 * The engine's unique copy of a string: V8 stores property keys internalized, and a key read back
 * from an object is that copy. Keys made once this way and reused cost no string-table lookup when
 * stored or looked up as properties (any other string works too, only a little slower).
 */
export function internalize(s: string): string {
  return Object.keys({ [s]: 0 })[0]!;
}
