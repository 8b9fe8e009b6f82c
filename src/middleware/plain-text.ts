/** Short plain-text answers the middleware gives itself (404, 403, 405, 416). */

import { Buffer } from 'node:buffer';
import type { App, ResponseHeaders } from '../types.js';

/** An app answering `status` with `text` (no body for HEAD), plus any `extra` headers. */
export function plainText(status: string, text: string, extra: ResponseHeaders = []): App {
  const body = Buffer.from(text);
  return (environ, startResponse) => {
    startResponse(status, [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(body.length)],
      ...extra,
    ]);
    return environ.REQUEST_METHOD === 'HEAD' ? [] : [body];
  };
}
