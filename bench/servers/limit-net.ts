/**
 * The limit row: a node:net server that parses nothing it does not need and writes a prepared
 * response, byte for byte what the others send. It finds the end of each request head, skips a
 * body by its Content-Length and picks the response by the path's first letter: no HTTP server
 * in Node can answer with less work, so its rate is what the machine can do.
 */
import net from 'node:net';
import { BIG, HELLO, TEXT } from './payloads.js';
import { listen } from './listen.js';

const head = (length: number) =>
  Buffer.from(
    `HTTP/1.1 200 OK\r\nContent-Type: ${TEXT}\r\nContent-Length: ${length}\r\nConnection: keep-alive\r\n\r\n`,
  );
const ECHO_LENGTH = 4096; // the bench's echo body: 4 KiB of 'p'
const RESPONSES: Record<string, Buffer> = {
  h: Buffer.concat([head(HELLO.length), HELLO]),
  '6': Buffer.concat([head(BIG.length), BIG]),
  e: Buffer.concat([head(ECHO_LENGTH), Buffer.alloc(ECHO_LENGTH, 'p')]),
};
const NOT_FOUND = Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
const END = Buffer.from('\r\n\r\n');
const LENGTH = Buffer.from('\r\ncontent-length:');

/** The declared body length of the head in buf[from, end), or 0. */
function bodyLength(buf: Buffer, from: number, end: number): number {
  const at = buf.subarray(from, end).toString('latin1').toLowerCase().indexOf('\r\ncontent-length:');
  if (at === -1) return 0;
  return parseInt(buf.toString('latin1', from + at + LENGTH.length, end), 10) || 0;
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let pending: Buffer | undefined;
  let skip = 0;
  socket.on('data', (chunk: Buffer) => {
    let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    pending = undefined;
    if (skip > 0) {
      const n = Math.min(skip, buf.length);
      skip -= n;
      buf = buf.subarray(n);
    }
    const out: Buffer[] = [];
    let off = 0;
    for (;;) {
      const end = buf.indexOf(END, off);
      if (end === -1) break;
      // "GET /h..." or "POST /e...": the letter after the first '/'.
      const slash = buf.indexOf(0x2f, off);
      out.push(RESPONSES[String.fromCharCode(buf[slash + 1]!)] ?? NOT_FOUND);
      const body = buf[off] === 0x50 /* P(OST) */ ? bodyLength(buf, off, end) : 0;
      off = end + 4 + body;
      if (off > buf.length) {
        skip = off - buf.length;
        off = buf.length;
        break;
      }
    }
    if (off < buf.length) pending = Buffer.from(buf.subarray(off));
    if (out.length === 1) socket.write(out[0]!);
    else if (out.length > 1) socket.write(Buffer.concat(out));
  });
  socket.on('error', () => {});
});
listen(server);
