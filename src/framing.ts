/**
 * Request body framing rules (RFC 9112 §6), shared by the environ builder (for hosts with their own
 * parsers) and the raw server's parser, so both refuse exactly the same requests.
 */

import { HttpError } from './errors.js';

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
