/** One Common Log Format line per request, with the duration appended. */

import type { ResponseRecord } from '../gateway.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => (n < 10 ? '0' : '') + n;

function clfDate(d: Date): string {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** `127.0.0.1 - - [25/Nov/2026:19:40:59 +0000] "GET / HTTP/1.1" 200 11 0.4ms` (status `-` when aborted before any). */
export function formatAccessLine(r: ResponseRecord, now = new Date()): string {
  // The target is latin-1 text from the wire; escape quotes and control bytes so a line stays one line.
  const target = r.target.replace(/["\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  const status = r.status === 0 ? '-' : String(r.status);
  const aborted = r.aborted ? ' aborted' : '';
  return `${r.remoteAddress ?? '-'} - - [${clfDate(now)}] "${r.method} ${target} HTTP/${r.httpVersion}" ${status} ${r.bytes} ${r.durationMs.toFixed(1)}ms${aborted}\n`;
}
