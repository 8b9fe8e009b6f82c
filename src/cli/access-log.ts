/** One Common Log Format line per request, with the duration appended. */

import type { ResponseRecord } from '../gateway.js';
import { clfDate, escapeField } from '../middleware/access-log.js';

/** `127.0.0.1 - - [25/Nov/2026:19:40:59 +0000] "GET / HTTP/1.1" 200 11 0.4ms` (status `-` when aborted before any). */
export function formatAccessLine(r: ResponseRecord, now = new Date()): string {
  // The target is latin-1 text from the wire; escaped so a line stays one line.
  const target = escapeField(r.target);
  const status = r.status === 0 ? '-' : String(r.status);
  const aborted = r.aborted ? ' aborted' : '';
  return `${r.remoteAddress ?? '-'} - - [${clfDate(now)}] "${r.method} ${target} HTTP/${r.httpVersion}" ${status} ${r.bytes} ${r.durationMs.toFixed(1)}ms${aborted}\n`;
}
