/** The nsgi app every nsgi server in the benchmark runs: the same responses as the native handlers. */
import type { App, ResponseHeaders } from '../../src/index.js';
import { BIG, HELLO, PIECE, TEXT } from './payloads.js';

const plain: ResponseHeaders = [['Content-Type', TEXT]];

const echo: App = async (environ, startResponse) => {
  const body = await environ['wsgi.input'].read();
  startResponse('200 OK', plain);
  return [body];
};

const upload: App = async (environ, startResponse) => {
  const input = environ['wsgi.input'];
  let n = 0;
  for (;;) {
    const piece = await input.read(64 * 1024);
    if (piece.length === 0) break;
    n += piece.length;
  }
  startResponse('200 OK', plain);
  return [Buffer.from(String(n))];
};

function* pieces(bytes: number): Generator<Uint8Array> {
  for (let left = bytes; left > 0; left -= PIECE.length) yield left >= PIECE.length ? PIECE : PIECE.subarray(0, left);
}

export const app: App = (environ, startResponse) => {
  switch (environ.PATH_INFO) {
    case '/hello':
      startResponse('200 OK', plain);
      return [HELLO];
    case '/64k':
      startResponse('200 OK', plain);
      return [BIG];
    case '/echo':
      return echo(environ, startResponse);
    case '/upload':
      return upload(environ, startResponse);
    case '/download': {
      const bytes = Number(/^bytes=(\d+)$/.exec(environ.QUERY_STRING ?? '')?.[1] ?? 0);
      startResponse('200 OK', [
        ['Content-Type', 'application/octet-stream'],
        ['Content-Length', String(bytes)],
      ]);
      return pieces(bytes);
    }
    default:
      startResponse('404 Not Found', plain);
      return [];
  }
};
