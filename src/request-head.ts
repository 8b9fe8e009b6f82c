/**
 * Rules of the request head that every host applies the same way: the raw server's parser calls
 * them on what it parsed, the environ builder on what any other host's parser let through.
 */

import { HttpError } from './errors.js';

/** reg-name characters of a Host (RFC 3986: unreserved, pct-encoded, sub-delims but ','). */
export const REG_NAME = new Uint8Array(256);
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
