/**
 * Node's app models side by side under nsgi on the bundled server: a Hono app (a Fetch handler) at
 * /hono, an Express app at /express, and nsgi apps at the root.
 *
 *   npx nsgi serve examples/bridges.ts
 */

import express from 'express';
import { Hono } from 'hono';
import { fromFetchHandler } from '../adapters/fetch.js';
import { fromNodeListener } from '../adapters/node.js';
import type { App } from '../src/index.js';
import { mount, router } from '../src/middleware/index.js';

// The Hono app sees paths below its mount point, as with Hono's own app.mount().
const hono = new Hono();
hono.get('/', (c) => c.text('Hello from Hono'));
hono.get('/hi/:name', (c) => c.json({ hi: c.req.param('name') }));

// Express mounted under nsgi sees req.url below the mount point too, as with app.use('/x', sub).
const web = express();
web.use(express.json());
web.get('/', (_req, res) => void res.type('text/plain').send('Hello from Express'));
web.post('/echo', (req, res) => void res.json(req.body));

const home: App = (_environ, startResponse) => {
  const body = Buffer.from(
    '<!doctype html><title>bridges</title><p><a href="/hono/">Hono</a> · <a href="/express/">Express</a> · <a href="/nsgi/">nsgi</a></p>\n',
  );
  startResponse('200 OK', [['Content-Type', 'text/html; charset=utf-8']]);
  return [body];
};

const native = router({
  'GET /': (_environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8']]);
    return [Buffer.from('Hello from an nsgi app\n')];
  },
});

export const app: App = mount({
  '/hono': fromFetchHandler(hono.fetch),
  '/express': fromNodeListener(web),
  '/nsgi': native,
  '/': home,
});
