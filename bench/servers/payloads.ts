/** The responses every benchmarked server sends, identical byte for byte. */
import type { IncomingMessage, ServerResponse } from 'node:http';
export const HELLO = Buffer.from('hello world'); // 11 bytes
export const BIG = Buffer.alloc(64 * 1024, 'x'); // 64 KiB
export const TEXT = 'text/plain';

/** The native echo: read the whole body, send it back with its length. */
export function echoBody(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'Content-Type': TEXT, 'Content-Length': body.length });
    res.end(body);
  });
}

/** A 64 KiB piece of a bulk download. */
export const PIECE = Buffer.alloc(64 * 1024, 'd');

/** The native bulk upload: count the body's bytes as they stream in, answer the count. */
export function countUpload(req: IncomingMessage, res: ServerResponse): void {
  let n = 0;
  req.on('data', (c: Buffer) => (n += c.length));
  req.on('end', () => {
    const body = String(n);
    res.writeHead(200, { 'Content-Type': TEXT, 'Content-Length': body.length });
    res.end(body);
  });
}

/** The native bulk download: `bytes` bytes in 64 KiB pieces, honouring backpressure. */
export function streamDownload(bytes: number, res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes });
  let left = bytes;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(PIECE.length, left);
      left -= n;
      if (!res.write(n === PIECE.length ? PIECE : PIECE.subarray(0, n))) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}
