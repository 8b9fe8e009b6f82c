/** Baseline for bench:h2: a node:http2 compatibility-API handler, h2 and HTTP/1.1 on one TLS port. */
import http2 from 'node:http2';
import { HELLO, TEXT } from './payloads.js';
import { listen } from './listen.js';
import { TLS } from './tls.js';

const server = http2.createSecureServer({ ...TLS, allowHTTP1: true }, (req, res) => {
  if (req.url === '/hello') {
    res.writeHead(200, { 'Content-Type': TEXT, 'Content-Length': HELLO.length });
    res.end(HELLO);
    return;
  }
  res.writeHead(404, { 'Content-Length': 0 });
  res.end();
});
listen(server);
