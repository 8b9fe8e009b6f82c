/**
 * `accessLog`: one Common or Combined Log Format line per request, with the duration appended,
 * written when the server closes the body (so bytes are what was sent and the time is the whole
 * exchange). The body passes through unchanged.
 */

import { performance } from 'node:perf_hooks';
import { toApp } from '../app-forms.js';
import type { App, AppLike, StartResponse } from '../types.js';
import { watchBody } from './body.js';
import { thenOrNow } from '../thenable.js';
import { watchOffer } from '../websocket.js';

export interface AccessLogOptions {
  /** `'common'` (default) or `'combined'` (adds Referer and User-Agent). */
  format?: 'common' | 'combined' | undefined;
  /** Where lines go. Default: process.stdout. */
  stream?: { write(line: string): unknown } | undefined;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => (n < 10 ? '0' : '') + n;

/** `[10/Oct/2000:13:55:36 +0000]` */
export function clfDate(d: Date): string {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** Quotes and control bytes escaped, so a line stays one line whatever the client sent. */
export function escapeField(s: string): string {
  // eslint-disable-next-line no-control-regex -- control bytes are what it escapes
  return s.replace(/["\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function accessLog(app: AppLike, options: AccessLogOptions = {}): App {
  const inner = toApp(app);
  const combined = options.format === 'combined';
  if (options.format !== undefined && options.format !== 'common' && !combined) {
    throw new RangeError(`accessLog: format must be 'common' or 'combined', got ${JSON.stringify(options.format)}`);
  }
  const out = options.stream ?? process.stdout;
  return (environ, startResponse) => {
    const start = performance.now();
    const when = new Date();
    let status = '-';
    let bytes = 0;
    const sr: StartResponse = (s, headers, excInfo) => {
      const write = startResponse(s, headers, excInfo);
      status = s.slice(0, 3);
      return (data) => {
        bytes += data.length;
        return write(data);
      };
    };
    const line = () => {
      const request = escapeField(
        `${environ.REQUEST_METHOD} ${String(environ.REQUEST_URI ?? environ.PATH_INFO)} ${environ.SERVER_PROTOCOL}`,
      );
      let text = `${String(environ.REMOTE_ADDR ?? '-')} - ${escapeField(typeof environ.REMOTE_USER === 'string' ? environ.REMOTE_USER : '-')} [${clfDate(when)}] "${request}" ${status} ${bytes === 0 ? '-' : bytes}`;
      if (combined)
        text += ` "${escapeField(String(environ.HTTP_REFERER ?? '-'))}" "${escapeField(String(environ.HTTP_USER_AGENT ?? '-'))}"`;
      out.write(`${text} ${(performance.now() - start).toFixed(1)}ms\n`);
    };
    // An accepted WebSocket is logged as a 101 when it closes, with the socket's whole life as the time.
    let accepted = false;
    watchOffer(environ, {
      accepted: () => {
        accepted = true;
        status = '101';
      },
    });
    const closed = () => {
      const signal = environ['nsgi.signal'];
      if (!accepted || signal.aborted) line();
      else signal.addEventListener('abort', line, { once: true });
    };
    // A HEAD response sends no body, whatever the app returns.
    const head = environ.REQUEST_METHOD === 'HEAD';
    const watch = { chunk: (c: Uint8Array) => void (head || (bytes += c.length)), closed };
    return thenOrNow(inner(environ, sr), (body) => watchBody(body, watch));
  };
}
