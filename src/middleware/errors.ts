/**
 * `errors`: turns an app's failure into an error page, using excInfo as the PEP intends. Before the
 * response has started the page replaces it (a generic 500, or with `debug` the error and its stack,
 * as HTML or text by `Accept`); once body bytes have gone out nothing can replace them, so the error
 * is raised again and the server aborts the response. Every error is written to `wsgi.errors`.
 */

import { Buffer } from 'node:buffer';
import { toApp } from '../app-forms.js';
import { watchOffer } from '../websocket.js';
import { formatError } from '../error-stream.js';
import type { App, AppLike, Body, Bytes, Environ, StartResponse } from '../types.js';
import { closable, isBody, relay } from './body.js';
import { isThenable } from '../thenable.js';

export interface ErrorsOptions {
  /** Show the error and its stack to the client. Never in production: it tells attackers how the app works. */
  debug?: boolean | undefined;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(environ: Environ, err: unknown, debug: boolean): { type: string; body: Buffer } {
  if (!debug) return { type: 'text/plain; charset=utf-8', body: Buffer.from('Internal Server Error\n') };
  const report = formatError(err);
  const where = `${environ.REQUEST_METHOD} ${environ.REQUEST_URI ?? environ.PATH_INFO}`;
  if (/\btext\/html\b/.test(String(environ.HTTP_ACCEPT ?? ''))) {
    const html =
      `<!doctype html><html><head><meta charset="utf-8"><title>500 Internal Server Error</title></head><body>` +
      `<h1>Internal Server Error</h1><p>${escapeHtml(where)}</p><pre>${escapeHtml(report)}</pre></body></html>\n`;
    return { type: 'text/html; charset=utf-8', body: Buffer.from(html) };
  }
  return { type: 'text/plain; charset=utf-8', body: Buffer.from(`Internal Server Error\n\n${where}\n\n${report}\n`) };
}

export function errors(app: AppLike, options: ErrorsOptions = {}): App {
  const inner = toApp(app);
  const debug = options.debug ?? false;
  return (environ, startResponse) => {
    let sent = false;
    // After a WebSocket is accepted there is no HTTP response to replace: the error goes on to the
    // server, which closes the socket with 1011.
    watchOffer(environ, { accepted: () => (sent = true) });
    const fail = (err: unknown, sr: StartResponse): Bytes => {
      environ['wsgi.errors'].write(
        `nsgi errors: ${environ.REQUEST_METHOD} ${String(environ.REQUEST_URI ?? environ.PATH_INFO)}: ${formatError(err)}\n`,
      );
      // With excInfo, start_response replaces the stored headers, or re-throws once they are sent.
      if (sent) throw err;
      const { type, body } = page(environ, err, debug);
      sr(
        '500 Internal Server Error',
        [
          ['Content-Type', type],
          ['Content-Length', String(body.length)],
        ],
        err,
      );
      return environ.REQUEST_METHOD === 'HEAD' ? new Uint8Array(0) : body;
    };
    // Bytes sent through write() start the response as surely as body chunks do.
    const tracked: StartResponse = (status, headers, excInfo) => {
      const write = startResponse(status, headers, excInfo);
      return (data) => {
        if (data.length > 0) sent = true;
        return write(data);
      };
    };
    const page500 = (err: unknown): Body => [fail(err, startResponse)];
    const pass = (body: Body): Body =>
      !isBody(body)
        ? body
        : closable(
            (async function* () {
              try {
                for await (const chunk of relay(body)) {
                  if (chunk.length > 0) sent = true;
                  yield chunk;
                }
              } catch (err) {
                yield fail(err, startResponse);
              }
            })(),
            body,
          );
    // The app runs now, as the server called it; only its body waits for the server to iterate.
    let result: Body | PromiseLike<Body>;
    try {
      result = inner(environ, tracked);
    } catch (err) {
      return page500(err);
    }
    return isThenable<Body>(result) ? Promise.resolve(result).then(pass, page500) : pass(result);
  };
}
