/**
 * HTTP/2 on every host that serves it (SPEC §17), beyond the conformance suite: many streams on one
 * session, resets, flow control both ways, and the request-head rules applied to streams.
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import { createNodeServer } from '../adapters/node.js';
import { serve } from '../src/server/index.js';
import type { App, Environ } from '../src/types.js';
import { fastifyH2Factory, nodeH2cFactory, nodeH2Factory, rawTlsFactory } from './conformance/factories.js';
import { LogCapture, type ServerFactory, type ServerHandle } from './conformance/harness.js';
import { deferred, sleep } from './helpers/raw-http.js';

const HOSTS: Array<[string, ServerFactory]> = [
  ['the raw server (TLS, ALPN h2)', rawTlsFactory],
  ['node:http2 (TLS, ALPN h2)', nodeH2Factory],
  ['node:http2 (h2c)', nodeH2cFactory],
  ['Fastify with http2: true', fastifyH2Factory],
];

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** RST_STREAM code; 0 when the stream ended normally. */
  rst: number;
}

function connectTo(handle: ServerHandle): ClientHttp2Session {
  const session = http2.connect(`${handle.tls === true ? 'https' : 'http'}://127.0.0.1:${handle.port}`, {
    rejectUnauthorized: false,
  });
  session.on('error', () => {});
  return session;
}

/** One request on `session`; the body (if any) is written and the stream ended. */
function fetchOn(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer): Promise<Answer> {
  const stream = session.request(headers, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  return answerOf(stream);
}

function answerOf(stream: ClientHttp2Stream): Promise<Answer> {
  return new Promise((resolve) => {
    let head: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('error', () => {});
    stream.on('close', () =>
      resolve({
        status: Number(head[':status'] ?? 0),
        headers: head,
        body: Buffer.concat(chunks),
        rst: stream.rstCode ?? 0,
      }),
    );
  });
}

const text = (s: string) => Buffer.from(s, 'latin1');

/** Answers with the CGI keys as JSON (and echoes the body's length and digest). */
const probe: App = async (environ, startResponse) => {
  const hash = createHash('sha256');
  let length = 0;
  for await (const chunk of environ['wsgi.input']) {
    hash.update(chunk);
    length += chunk.length;
  }
  const cgi: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(environ)) if (!k.includes('.')) cgi[k] = v;
  cgi.raw = environ['nsgi.raw_headers'];
  cgi.length = length;
  cgi.sha256 = hash.digest('hex');
  startResponse('200 OK', [['Content-Type', 'application/json']]);
  return [text(JSON.stringify(cgi))];
};

for (const [name, factory] of HOSTS) {
  describe(`HTTP/2 on ${name}`, () => {
    const serve = async (app: App, fn: (session: ClientHttp2Session, log: LogCapture) => Promise<void>, extra = {}) => {
      const log = new LogCapture();
      const handle = await factory(app, { mount: '', errorLog: log, ...extra });
      const session = connectTo(handle);
      try {
        await fn(session, log);
      } finally {
        session.close();
        await handle.close();
      }
    };

    test('h2.concurrent-streams: 100 streams on one session all complete, bodies intact, close() once each', async () => {
      let closes = 0;
      const app: App = async (environ, startResponse) => {
        const n = Number(environ.QUERY_STRING);
        await sleep(n % 7);
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return {
          *[Symbol.iterator]() {
            for (let i = 0; i < 10; i++) yield text(`${n}:${i};`);
          },
          close: () => void closes++,
        };
      };
      await serve(app, async (session) => {
        const answers = await Promise.all(
          Array.from({ length: 100 }, (_, n) => fetchOn(session, { ':path': `/s?${n}` })),
        );
        answers.forEach((a, n) => {
          assert.equal(a.status, 200);
          assert.equal(a.rst, 0);
          assert.equal(a.body.toString(), Array.from({ length: 10 }, (_, i) => `${n}:${i};`).join(''));
        });
        await sleep(20);
        assert.equal(closes, 100);
        // nsgi's own HTTP/2 servers bound the streams a client may open at once (Fastify's is Fastify's).
        if (!name.startsWith('Fastify')) assert.equal(session.remoteSettings.maxConcurrentStreams, 100);
      });
    });

    test('h2.reset-mid-stream: a client RST_STREAM aborts nsgi.signal and calls close() once; the session serves on', async () => {
      const closed = deferred();
      let closes = 0;
      let signal: AbortSignal | undefined;
      const app: App = (environ, startResponse) => {
        if (environ.PATH_INFO === '/ok') {
          startResponse('200 OK', [['Content-Type', 'text/plain']]);
          return [text('still here')];
        }
        signal = environ['nsgi.signal'];
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return {
          async *[Symbol.asyncIterator]() {
            for (;;) {
              yield text('tick\n');
              await sleep(5);
            }
          },
          close() {
            closes++;
            closed.resolve();
          },
        };
      };
      await serve(app, async (session) => {
        const stream = session.request({ ':path': '/stream' });
        stream.on('error', () => {});
        await once(stream, 'data');
        stream.close(http2.constants.NGHTTP2_CANCEL);
        await closed.promise;
        assert.equal(signal?.aborted, true);
        await sleep(20);
        assert.equal(closes, 1);
        const ok = await fetchOn(session, { ':path': '/ok' });
        assert.equal(ok.body.toString(), 'still here');
      });
    });

    test('h2.flow-control: an 8 MiB upload and a 16 MiB download pass intact through flow control', async () => {
      const big = Buffer.alloc(16 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
      const app: App = (environ, startResponse) => {
        if (environ.PATH_INFO === '/down') {
          startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
          return (function* () {
            for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536);
          })();
        }
        return probe(environ, startResponse);
      };
      await serve(
        app,
        async (session) => {
          const upload = big.subarray(0, 8 * 1024 * 1024);
          const up = await fetchOn(session, { ':path': '/up', ':method': 'POST' }, upload);
          const seen = JSON.parse(up.body.toString()) as { length: number; sha256: string; CONTENT_LENGTH?: string };
          assert.equal(seen.length, upload.length);
          assert.equal(seen.sha256, createHash('sha256').update(upload).digest('hex'));
          assert.equal(seen.CONTENT_LENGTH, undefined, 'no Content-Length was sent: read to the end of the stream');
          const down = await fetchOn(session, { ':path': '/down' });
          assert.equal(down.body.length, big.length);
          assert.ok(down.body.equals(big));
        },
        { maxBodySize: 64 * 1024 * 1024 },
      );
    });

    test('h2.backpressure: a stream the client does not read stalls only that stream', async () => {
      let pulled = 0;
      const app: App = (environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        if (environ.PATH_INFO === '/quick') return [text('quick')];
        return (function* () {
          for (let i = 0; i < 10_000; i++) {
            pulled++;
            yield Buffer.alloc(16 * 1024);
          }
        })();
      };
      await serve(app, async (session) => {
        const slow = session.request({ ':path': '/slow' });
        slow.on('error', () => {});
        slow.pause();
        await sleep(200);
        const quick = await fetchOn(session, { ':path': '/quick' });
        assert.equal(quick.body.toString(), 'quick');
        // The session and stream windows (64 KiB by default) and the socket buffers bound what the app
        // may have produced: nowhere near the 160 MB it would yield unchecked.
        assert.ok(pulled < 1000, `the app was pulled ${pulled} times while its client read nothing`);
        slow.close(http2.constants.NGHTTP2_CANCEL);
      });
    });

    test('h2.expect-continue: 100 comes on the first read of wsgi.input, then the answer', async () => {
      await serve(probe, async (session) => {
        const stream = session.request({
          ':path': '/',
          ':method': 'POST',
          expect: '100-continue',
          'content-length': '5',
        });
        const answer = answerOf(stream);
        await once(stream, 'continue');
        stream.end('hello');
        const a = await answer;
        assert.equal(a.status, 200);
        assert.equal((JSON.parse(a.body.toString()) as { length: number }).length, 5);
      });
    });

    test('h2.environ: HTTP/2.0, :authority as HTTP_HOST, :path as the target, no pseudo-header anywhere', async () => {
      await serve(probe, async (session) => {
        const a = await fetchOn(session, {
          ':path': '/p/%41?q=1',
          ':authority': 'example.test:8443',
          cookie: ['a=1', 'b=2'],
          'x-thing': 'v',
        });
        const e = JSON.parse(a.body.toString()) as Environ & { raw: Array<[string, string]> };
        assert.equal(e.SERVER_PROTOCOL, 'HTTP/2.0');
        assert.equal(e.HTTP_HOST, 'example.test:8443');
        assert.equal(e.REQUEST_URI, '/p/%41?q=1');
        assert.equal(e.PATH_INFO, '/p/A');
        assert.equal(e.QUERY_STRING, 'q=1');
        assert.equal(e.HTTP_COOKIE, 'a=1; b=2');
        assert.equal(e.HTTP_X_THING, 'v');
        assert.ok(Object.keys(e).every((k) => !k.startsWith('HTTP_:')));
        assert.ok(
          e.raw.every(([n]) => !n.startsWith(':')),
          JSON.stringify(e.raw),
        );
        assert.equal(a.headers[':status'], 200);
      });
    });

    test('h2.request-rules: :authority obeys Host syntax and must match a Host field; underscores, trust proxy, limits', async () => {
      await serve(
        probe,
        async (session) => {
          assert.equal((await fetchOn(session, { ':path': '/', ':authority': 'h:8x' })).status, 400);
          const differs = await fetchOn(session, { ':path': '/', ':authority': 'a.test', host: 'b.test' });
          assert.equal(differs.status, 400);
          assert.match(differs.body.toString(), /differs from :authority/);
          assert.equal((await fetchOn(session, { ':path': '/', ':authority': 'a.test', host: 'a.test' })).status, 200);
          const underscore = await fetchOn(session, { ':path': '/', x_auth_user: 'evil', 'x-auth-user': 'ok' });
          const seen = JSON.parse(underscore.body.toString()) as Environ & { raw: Array<[string, string]> };
          assert.equal(seen.HTTP_X_AUTH_USER, 'ok');
          assert.ok(
            seen.raw.some(([n]) => n === 'x_auth_user'),
            'nsgi.raw_headers keeps what was received',
          );
          const proxied = await fetchOn(session, { ':path': '/', 'x-forwarded-for': '203.0.113.9' });
          assert.equal((JSON.parse(proxied.body.toString()) as Environ).REMOTE_ADDR, '203.0.113.9');
          assert.equal((await fetchOn(session, { ':path': `/${'a'.repeat(9000)}` })).status, 414);
          const declared = await fetchOn(
            session,
            { ':path': '/', ':method': 'POST', 'content-length': '11' },
            text('x'.repeat(11)),
          );
          assert.equal(declared.status, 413);
          const streamed = await fetchOn(session, { ':path': '/', ':method': 'POST' }, text('x'.repeat(11)));
          assert.equal(streamed.status, 413);
        },
        { trustProxy: 'loopback', maxBodySize: 10 },
      );
    });

    test('h2.length-mismatch: DATA longer than Content-Length resets that stream only; the app never reads a wrong body', async () => {
      let reads = 0;
      const app: App = async (environ, startResponse) => {
        if (environ.PATH_INFO === '/check') {
          for await (const _ of environ['wsgi.input']) reads++;
        }
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return [text('fine')];
      };
      await serve(app, async (session) => {
        const sibling = session.request({ ':path': '/slow-sibling' });
        const siblingAnswer = answerOf(sibling);
        const bad = session.request({ ':path': '/check', ':method': 'POST', 'content-length': '3' });
        bad.on('error', () => {});
        bad.end(text('too long'));
        const answer = await answerOf(bad);
        assert.notEqual(answer.rst, 0, 'the stream is reset');
        assert.equal((await siblingAnswer).body.toString(), 'fine');
        assert.equal((await fetchOn(session, { ':path': '/after' })).body.toString(), 'fine');
        assert.ok(reads <= 1);
      });
    });

    test('h2.app-error-after-head: an error mid-body resets the stream with INTERNAL_ERROR after what was sent', async () => {
      const app: App = (_environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return {
          async *[Symbol.asyncIterator]() {
            yield text('part one');
            throw new Error('late failure');
          },
        };
      };
      await serve(app, async (session, log) => {
        const a = await fetchOn(session, { ':path': '/' });
        assert.equal(a.body.toString(), 'part one');
        assert.equal(a.rst, http2.constants.NGHTTP2_INTERNAL_ERROR);
        assert.match(log.text, /late failure/);
        assert.equal((await fetchOn(session, { ':path': '/' })).rst, http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
    });
  });
}

describe('HTTP/2 options', () => {
  const TLS = {
    key: readFileSync(new URL('./fixtures/key.pem', import.meta.url)),
    cert: readFileSync(new URL('./fixtures/cert.pem', import.meta.url)),
  };
  const hello: App = (_environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']]);
    return [text('hello')];
  };

  test('h2.raw-opt-out: the bundled server with http2: false offers only HTTP/1.1 over TLS', async () => {
    const server = await serve(hello, { port: 0, ...TLS, http2: false, errorLog: new LogCapture() });
    try {
      const port = (server.address() as { port: number }).port;
      const socket = tls.connect({
        port,
        host: '127.0.0.1',
        ALPNProtocols: ['h2', 'http/1.1'],
        rejectUnauthorized: false,
      });
      await once(socket, 'secureConnect');
      assert.notEqual(socket.alpnProtocol, 'h2', 'no h2 offered: the connection is HTTP/1.1');
      socket.end();
      await once(socket, 'close');
    } finally {
      await server.close(0);
    }
  });

  test('h2.graceful-close: closing the bundled server lets an open stream finish, then the session goes', async () => {
    const release = deferred();
    const app: App = async (_environ, startResponse) => {
      await release.promise;
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [text('finished')];
    };
    const server = await serve(app, { port: 0, ...TLS, errorLog: new LogCapture() });
    const session = connectTo({ port: (server.address() as { port: number }).port, tls: true, close: async () => {} });
    const pending = fetchOn(session, { ':path': '/' });
    await sleep(50);
    const closed = server.close(5000);
    await sleep(50);
    release.resolve();
    assert.equal((await pending).body.toString(), 'finished');
    await closed;
    assert.equal(server.connections, 0);
  });

  test('h2.raw-needs-tls: the bundled server refuses http2: true without TLS, naming createNodeServer for h2c', async () => {
    await assert.rejects(serve(hello, { port: 0, http2: true }), /http2: true needs key and cert.*createNodeServer/);
  });

  test('h2.node-options: createNodeServer refuses key without cert, naming both', () => {
    assert.throws(() => createNodeServer(hello, { http2: true, key: TLS.key }), /TLS needs both key and cert/);
  });
});

test('tls.vanished-handshake: a TLS client that vanishes mid-handshake does not hold close(grace) past the grace', async () => {
  const server = await serve((_e, startResponse) => (startResponse('200 OK', []), []), {
    port: 0,
    key: readFileSync(new URL('./fixtures/key.pem', import.meta.url)),
    cert: readFileSync(new URL('./fixtures/cert.pem', import.meta.url)),
  });
  const socket = tls.connect({
    port: (server.address() as { port: number }).port,
    host: '127.0.0.1',
    rejectUnauthorized: false,
  });
  await once(socket, 'secureConnect');
  socket.destroy();
  await sleep(50);
  const started = Date.now();
  // close() keeps no timer of its own alive (it must not hold a process open): this test does.
  const alive = setInterval(() => {}, 1000);
  try {
    await server.close(200);
  } finally {
    clearInterval(alive);
  }
  assert.ok(Date.now() - started < 2000, `close(200) took ${Date.now() - started} ms`);
});
