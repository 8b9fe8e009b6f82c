/** Baseline: a plain node:http handler. */
import http from 'node:http';
import { BIG, countUpload, echoBody, HELLO, streamDownload, TEXT } from './payloads.js';
import { listen } from './listen.js';

const server = http.createServer((req, res) => {
  switch (req.url) {
    case '/hello':
      res.writeHead(200, { 'Content-Type': TEXT, 'Content-Length': HELLO.length });
      res.end(HELLO);
      return;
    case '/64k':
      res.writeHead(200, { 'Content-Type': TEXT, 'Content-Length': BIG.length });
      res.end(BIG);
      return;
    case '/echo':
      echoBody(req, res);
      return;
    case '/upload':
      countUpload(req, res);
      return;
    default:
      if (req.url?.startsWith('/download?bytes=')) {
        streamDownload(Number(req.url.slice(16)), res);
        return;
      }
      res.writeHead(404, { 'Content-Length': 0 });
      res.end();
  }
});
listen(server);
