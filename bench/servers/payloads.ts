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
