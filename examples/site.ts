/**
 * A small site built from the middleware library: routed pages, static files, gzip/brotli, an
 * access log, error pages and proxy headers trusted from loopback only. Runs on every host:
 *
 *   npx nsgi serve examples/site.ts
 */

import { fileURLToPath } from 'node:url';
import type { App, Environ } from '../src/index.js';
import {
  accessLog,
  compose,
  compress,
  errors,
  mount,
  proxyFix,
  router,
  staticFiles,
  type RouteMatch,
} from '../src/middleware/index.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** A native string (bytes as latin-1) as the text it spells in UTF-8. */
const text = (s: string) => Buffer.from(s, 'latin1').toString('utf8');

function page(title: string, body: string): Buffer {
  return Buffer.from(
    `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escape(title)}</title><link rel="stylesheet" href="/static/site.css"></head>
<body>
<nav><img src="/static/logo.svg" alt="nsgi logo" width="32" height="32"> <a href="/">Home</a><a href="/about">About</a><a href="/hello/world">Hello</a></nav>
<h1>${escape(title)}</h1>
${body}
</body>
</html>
`,
  );
}

const html =
  (render: (environ: Environ) => Buffer | Promise<Buffer>): App =>
  async (environ, startResponse) => {
    const body = await render(environ);
    startResponse('200 OK', [
      ['Content-Type', 'text/html; charset=utf-8'],
      ['Content-Length', String(body.length)],
    ]);
    return [body];
  };

const pages = router({
  'GET /': html(() =>
    page(
      'Welcome to nsgi',
      `<p>This site is an nsgi app made of middleware: a router, static files, compression and an access log.</p>
<form method="post" action="/echo"><label>Say something <input name="message"></label> <button>Send</button></form>`,
    ),
  ),
  'GET /about': html((environ) =>
    page(
      'About',
      `<p>Served to ${escape(String(environ.REMOTE_ADDR ?? 'a unix socket'))} over ${environ['wsgi.url_scheme']}.</p>`,
    ),
  ),
  'GET /hello/:name': html((environ) =>
    page(
      `Hello, ${text((environ['nsgi.route'] as RouteMatch).params.name!)}!`,
      '<p>Greetings from a route parameter.</p>',
    ),
  ),
  'POST /echo': html(async (environ) => {
    const form = new URLSearchParams(Buffer.from(await environ['wsgi.input'].read()).toString('utf8'));
    return page('You said', `<p class="echo">${escape(form.get('message') ?? '')}</p>`);
  }),
  'GET /api/time': (_environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'application/json']]);
    return [Buffer.from(JSON.stringify({ now: new Date().toISOString() }))];
  },
});

export interface SiteOptions {
  /** Where access-log lines go. Default: stdout. */
  log?: { write(line: string): unknown } | undefined;
}

export function createSite(options: SiteOptions = {}): App {
  return compose(
    (app) => accessLog(app, { stream: options.log }),
    (app) => proxyFix(app, { trust: 'loopback' }),
    (app) => errors(app),
    (app) => compress(app),
  )(
    mount({
      '/static': staticFiles(fileURLToPath(new URL('./static/', import.meta.url)), { maxAge: 3600 }),
      '/': pages,
    }),
  );
}

export const app = createSite();
