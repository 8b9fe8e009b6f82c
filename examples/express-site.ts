/**
 * The seed examples inside an Express app, next to Express's own routes and JSON parser:
 *
 *   npx tsx examples/express-site.ts      # http://127.0.0.1:3000/legacy/ and /api/hello
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { toExpress } from '../adapters/express.js';
import { app as examples } from './index.js';

export const site = express();

// Before the JSON parser, so apps that read wsgi.input get the body as sent.
site.use('/legacy', toExpress(examples, { fallthrough: true }));
site.get('/legacy/express-route', (_req, res) => {
  res.type('text').send('the nsgi app answered 404, so this Express route ran\n');
});

site.use(express.json());
site.post('/api/echo', (req, res) => {
  res.json({ received: req.body as unknown });
});
site.get('/api/hello', (_req, res) => {
  res.json({ hello: 'from Express' });
});

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const server = http.createServer(site);
  // 100 Continue only when an nsgi app reads the body.
  server.on('checkContinue', site);
  server.listen(3000, '127.0.0.1', () => console.log('http://127.0.0.1:3000/legacy/'));
}
