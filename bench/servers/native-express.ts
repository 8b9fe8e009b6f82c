/** Baseline: Express routes answering with the same bytes as the other servers. */
import http from 'node:http';
import express from 'express';
import { BIG, echoBody, HELLO, TEXT } from './payloads.js';
import { listen } from './listen.js';

/** The Express app, also run through fromNodeListener by express-via-nsgi. */
export const app = express();
app.get('/hello', (_req, res) => {
  res.writeHead(200, { 'Content-Type': TEXT, 'Content-Length': HELLO.length });
  res.end(HELLO);
});
app.get('/64k', (_req, res) => {
  res.writeHead(200, { 'Content-Type': TEXT, 'Content-Length': BIG.length });
  res.end(BIG);
});
app.post('/echo', echoBody);
if (process.env.NSGI_BENCH_IMPORT === undefined) listen(http.createServer(app));
