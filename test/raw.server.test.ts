/**
 * The raw server's connection handling: 100-continue, timeouts, many idle connections, clients that
 * do not read, shutdown, TLS and unix sockets.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { serve, type NsgiServer, type ServeOptions } from '../src/server/index.js';
import type { App } from '../src/types.js';
import { connect, deferred, readUntil, sleep } from './helpers/raw-http.js';

const fixtures = new URL('./fixtures/', import.meta.url);
const quiet = { write() {} };

async function withServer(
  app: App,
  options: ServeOptions,
  fn: (port: number, server: NsgiServer) => Promise<void>,
): Promise<void> {
  const server = await serve(app, { errorLog: quiet, ...options, host: '127.0.0.1', port: 0 });
  try {
    await fn((server.address() as net.AddressInfo).port, server);
  } finally {
    await server.close(0);
  }
}

const hello: App = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return [Buffer.from('hello')];
};

/** Resolves when the server closes `sock`, with the time it took. */
function closedAfter(sock: net.Socket): Promise<number> {
  const start = Date.now();
  return new Promise((resolve) => sock.once('close', () => resolve(Date.now() - start)));
}

describe('raw server: connections', () => {
  it('sends 100 Continue on the first read of wsgi.input, not before', async () => {
    const reading = deferred();
    const app: App = async (environ, startResponse) => {
      await sleep(100);
      reading.resolve();
      const body = await environ['wsgi.input'].read();
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [body];
    };
    await withServer(app, {}, async (port) => {
      const sock = await connect(port);
      let received = '';
      sock.on('data', (d) => (received += d.toString('latin1')));
      sock.write('POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
      await sleep(50);
      assert.equal(received, '', 'nothing is sent before the app reads');
      await reading.promise;
      await readUntil(sock, () => received.includes('100 Continue'));
      assert.match(received, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
      sock.write('body');
      await readUntil(sock, () => received.endsWith('body'));
      assert.match(received, /HTTP\/1\.1 200 OK/);
      sock.destroy();
    });
  });

  it('an app that answers without reading gets no 100 Continue, and the connection closes after the answer', async () => {
    const app: App = (_environ, startResponse) => {
      startResponse('401 Unauthorized', [['Content-Type', 'text/plain']]);
      return [Buffer.from('no')];
    };
    await withServer(app, {}, async (port) => {
      const sock = await connect(port);
      const closed = closedAfter(sock);
      const text = await new Promise<string>((resolve) => {
        let t = '';
        sock.on('data', (d) => (t += d.toString('latin1')));
        sock.on('close', () => resolve(t));
        sock.write('POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
      });
      await closed;
      assert.doesNotMatch(text, /100 Continue/);
      assert.match(text, /^HTTP\/1\.1 401 Unauthorized\r\n[\s\S]*Connection: close\r\n/);
    });
  });

  it('cuts off a slowloris client at the header timeout with 408', async () => {
    await withServer(hello, { headerTimeout: 1000 }, async (port) => {
      const sock = await connect(port);
      const closed = closedAfter(sock);
      let text = '';
      sock.on('data', (d) => (text += d.toString('latin1')));
      const bytes = 'GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ' + 'a'.repeat(100);
      let i = 0;
      const timer = setInterval(() => {
        if (!sock.destroyed && i < bytes.length) sock.write(bytes[i++]!);
      }, 100);
      const ms = await closed;
      clearInterval(timer);
      assert.ok(ms >= 900 && ms < 3000, `closed after ${ms} ms`);
      assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    });
  });

  it('closes a keep-alive connection that stays idle past the keep-alive timeout', async () => {
    await withServer(hello, { keepAliveTimeout: 500 }, async (port) => {
      const sock = await connect(port);
      const text = readUntil(sock, (t) => t.endsWith('hello'));
      sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
      await text;
      const ms = await closedAfter(sock);
      assert.ok(ms >= 300 && ms < 2500, `closed after ${ms} ms`);
    });
  });

  it('holds 2000 idle keep-alive connections and releases them all on shutdown', async () => {
    const server = await serve(hello, { host: '127.0.0.1', port: 0, errorLog: quiet });
    const port = (server.address() as net.AddressInfo).port;
    const socks: net.Socket[] = [];
    try {
      for (let batch = 0; batch < 20; batch++) {
        const opened = await Promise.all(
          Array.from({ length: 100 }, async () => {
            const sock = await connect(port);
            const done = readUntil(sock, (t) => t.endsWith('hello'), 10000);
            sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
            await done;
            return sock;
          }),
        );
        socks.push(...opened);
      }
      assert.equal(server.connections, 2000);
      const allClosed = Promise.all(
        socks.map((s) => (s.destroyed ? Promise.resolve() : new Promise((r) => s.once('close', r)))),
      );
      const start = Date.now();
      await server.close(5000);
      await allClosed;
      assert.ok(Date.now() - start < 4000, 'idle connections are closed at once, not after the grace period');
      assert.equal(server.connections, 0);
    } finally {
      for (const s of socks) s.destroy();
      await server.close(0);
    }
  });

  it('a client that never reads its response does not make the server produce more than a bound', async () => {
    let produced = 0;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const app: App = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
      return (function* () {
        for (let i = 0; i < 16 * 1024; i++) {
          produced += chunk.length;
          yield chunk;
        }
      })();
    };
    await withServer(app, {}, async (port) => {
      const sock = await connect(port);
      sock.pause();
      sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
      await sleep(1000);
      assert.ok(produced < 32 * 1024 * 1024, `produced ${produced} bytes for a client that reads nothing`);
      const before = produced;
      await sleep(300);
      assert.equal(produced, before, 'the app is not pulled while the socket is full');
      sock.destroy();
    });
  });

  it('a client that stops reading is cut off after sendTimeout: nsgi.signal aborts, close() runs once', async () => {
    let closes = 0;
    let signal: AbortSignal | undefined;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const app: App = (environ, startResponse) => {
      signal = environ['nsgi.signal'];
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
      return {
        *[Symbol.iterator]() {
          for (;;) yield chunk;
        },
        close: () => void closes++,
      };
    };
    await withServer(app, { sendTimeout: 500 }, async (port, server) => {
      const sock = await connect(port);
      sock.pause();
      sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
      // A paused client never sees the close behind the data it has not read: watch the server side.
      const start = Date.now();
      await sleep(100);
      while (server.connections > 0 && Date.now() - start < 3000) await sleep(20);
      const ms = Date.now() - start;
      assert.equal(server.connections, 0);
      assert.ok(ms >= 400 && ms < 3000, `cut off after ${ms} ms`);
      await sleep(20);
      assert.equal(signal?.aborted, true);
      assert.equal(closes, 1);
      sock.destroy();
    });
  });

  it('a client that pipelines requests but never reads gets no more responses than the socket holds', async () => {
    let requests = 0;
    const big = Buffer.alloc(256 * 1024, 'y');
    const app: App = (_environ, startResponse) => {
      requests++;
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
      return [big];
    };
    await withServer(app, {}, async (port) => {
      const sock = await connect(port);
      sock.pause();
      sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n'.repeat(2000));
      await sleep(1000);
      assert.ok(requests < 200, `answered ${requests} of 2000 pipelined requests for a client that reads nothing`);
      sock.destroy();
    });
  });

  it('on close(), lets a request in progress finish within the grace period, with Connection: close', async () => {
    const app: App = async (_environ, startResponse) => {
      await sleep(300);
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [Buffer.from('finished')];
    };
    const server = await serve(app, { host: '127.0.0.1', port: 0, errorLog: quiet });
    const port = (server.address() as net.AddressInfo).port;
    const sock = await connect(port);
    const text = readUntil(sock, (t) => t.endsWith('finished'));
    sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    await sleep(50);
    const closing = server.close(5000);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => resolve(true));
      s.on('connect', () => {
        s.destroy();
        resolve(false);
      });
    });
    assert.ok(refused, 'no new connections once closing');
    assert.match(await text, /Connection: close\r\n[\s\S]*finished$/);
    await closing;
  });

  it('on close(), an idle keep-alive connection gets 500 ms more; one that has sent nothing yet keeps its header timeout', async () => {
    const server = await serve(hello, { host: '127.0.0.1', port: 0, errorLog: quiet, headerTimeout: 3000 });
    const port = (server.address() as net.AddressInfo).port;
    const used = await connect(port);
    const fresh = await connect(port);
    try {
      const first = readUntil(used, (t) => t.endsWith('hello'));
      used.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
      await first;
      await sleep(50); // the server has seen `fresh` connect
      const usedClosed = closedAfter(used);
      const closing = server.close(10_000);
      const late = readUntil(fresh, (t) => t.endsWith('hello'));
      await sleep(1600); // past the idle connection's 500 ms and a tick of the server's clock
      assert.ok((await usedClosed) < 1600, 'the idle keep-alive connection is closed');
      fresh.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
      assert.match(await late, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: close\r\n[\s\S]*hello$/);
      await closing;
    } finally {
      used.destroy();
      fresh.destroy();
      await server.close(0);
    }
  });
  it('aborts requests still running when the grace period ends: nsgi.signal fires, close() runs once', async () => {
    const aborted = deferred<unknown>();
    let closes = 0;
    const app: App = (environ, startResponse) => {
      environ['nsgi.signal'].addEventListener('abort', () => aborted.resolve(environ['nsgi.signal'].reason));
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return {
        async *[Symbol.asyncIterator]() {
          yield Buffer.from('start');
          await new Promise(() => {});
        },
        close: () => void closes++,
      };
    };
    const server = await serve(app, { host: '127.0.0.1', port: 0, errorLog: quiet });
    const port = (server.address() as net.AddressInfo).port;
    const sock = await connect(port);
    const text = readUntil(sock, (t) => t.includes('start'));
    sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    await text;
    await server.close(200);
    const reason = await aborted.promise;
    assert.equal((reason as Error).name, 'ServerShutdownError');
    await sleep(50);
    assert.equal(closes, 1);
    sock.destroy();
  });

  it('a client that half-closes after its request still gets the response', async () => {
    await withServer(hello, {}, async (port) => {
      const sock = await connect(port);
      const text = readUntil(sock, (t) => t.endsWith('hello'));
      sock.end('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
      assert.match(await text, /^HTTP\/1\.1 200 OK/);
    });
  });

  it('streams a chunked upload to the app as it arrives', async () => {
    const pieces: string[] = [];
    const app: App = async (environ, startResponse) => {
      for await (const piece of environ['wsgi.input']) pieces.push(piece.toString());
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [Buffer.from(pieces.join(''))];
    };
    await withServer(app, {}, async (port) => {
      const sock = await connect(port);
      const text = readUntil(sock, (t) => t.endsWith('one\ntwo\n'));
      sock.write('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\none\n\r\n');
      await sleep(50);
      assert.deepEqual(pieces, ['one\n'], 'the first line reaches the app before the rest is sent');
      sock.write('4\r\ntwo\n\r\n0\r\n\r\n');
      assert.match(await text, /Content-Length: 8\r\n/);
      sock.destroy();
    });
  });

  it('bytes kept past a read (bodies read late, pipelined requests held) are not overwritten by later reads on other connections', async () => {
    // Each connection uploads its own byte pattern to an app that reads slowly, then pipelines a
    // second request behind it; every connection must get its own bytes back, exactly.
    const app: App = async (environ, startResponse) => {
      const input = environ['wsgi.input'];
      const parts: Buffer[] = [];
      for (;;) {
        await sleep(1);
        const piece = await input.read(1000);
        if (piece.length === 0) break;
        parts.push(Buffer.from(piece));
      }
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
      return [Buffer.concat(parts)];
    };
    await withServer(app, {}, async (port) => {
      const runs = Array.from({ length: 12 }, async (_, i) => {
        const body = Buffer.alloc(20_000 + i * 997, String.fromCharCode(65 + i));
        body.write(`start-${i}`, 0);
        const second = Buffer.from(`second-${i}`);
        const sock = await connect(port);
        const expected = body.length + second.length;
        const received = new Promise<Buffer>((resolve) => {
          const got: Buffer[] = [];
          sock.on('data', (d: Buffer) => got.push(d));
          sock.on('close', () => resolve(Buffer.concat(got)));
        });
        sock.write(`POST /${i} HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n`);
        for (let off = 0; off < body.length; off += 4096) {
          sock.write(body.subarray(off, off + 4096));
          await sleep(0);
        }
        sock.end(
          `POST /${i} HTTP/1.1\r\nHost: h\r\nContent-Length: ${second.length}\r\nConnection: close\r\n\r\n${second.toString()}`,
        );
        const all = await received;
        const bodies = all
          .toString('latin1')
          .split(/HTTP\/1\.1 200 OK\r\n[^]*?\r\n\r\n/)
          .slice(1);
        assert.equal(bodies.length, 2, `connection ${i}: two responses`);
        assert.ok(bodies[0] === body.toString('latin1'), `connection ${i}: the first body came back intact`);
        assert.equal(bodies[1], second.toString('latin1'), `connection ${i}: the held request was intact`);
        return expected;
      });
      await Promise.all(runs);
    });
  });

  it('serves TLS with wsgi.url_scheme https', async () => {
    const app: App = (environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [Buffer.from(`${environ['wsgi.url_scheme']} ${environ.SERVER_PORT}`)];
    };
    const key = readFileSync(new URL('key.pem', fixtures));
    const cert = readFileSync(new URL('cert.pem', fixtures));
    const server = await serve(app, { host: '127.0.0.1', port: 0, key, cert, errorLog: quiet });
    try {
      const port = (server.address() as net.AddressInfo).port;
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false }, (res) => {
            let t = '';
            res.on('data', (d) => (t += d));
            res.on('end', () => resolve(t));
          })
          .on('error', reject);
      });
      assert.equal(body, `https ${port}`);
    } finally {
      await server.close(0);
    }
  });

  it('listens on a unix socket', async () => {
    const path = join(tmpdir(), `nsgi-${process.pid}-${Date.now()}.sock`);
    const server = await serve(hello, { path, errorLog: quiet });
    try {
      assert.equal(server.address(), path);
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get({ socketPath: path, path: '/' }, (res) => {
            let t = '';
            res.on('data', (d) => (t += d));
            res.on('end', () => resolve(t));
          })
          .on('error', reject);
      });
      assert.equal(body, 'hello');
    } finally {
      await server.close(0);
    }
  });

  it('reports a refused request to onResponse with its request line when that was valid', async () => {
    const records: Array<[string, string, number]> = [];
    const onResponse = (r: { method: string; target: string; status: number }) =>
      void records.push([r.method, r.target, r.status]);
    await withServer(hello, { onResponse }, async (port) => {
      for (const bytes of [
        'POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n',
        'GET  / HTTP/1.1\r\n\r\n',
      ]) {
        const sock = await connect(port);
        const closed = closedAfter(sock);
        sock.resume();
        sock.write(bytes);
        await closed;
      }
    });
    assert.deepEqual(records, [
      ['POST', '/x', 400],
      ['-', '-', 400],
    ]);
  });

  it('refuses options that cannot work, naming the fix', async () => {
    await assert.rejects(serve(hello, { port: 0, key: 'x' }), /TLS needs both key and cert/);
    await assert.rejects(serve(hello, { port: 0, headerTimeout: 0 }), /headerTimeout must be a number > 0/);
    await assert.rejects(serve(hello, { port: 0, maxHeaderCount: -1 }), /maxHeaderCount must be a number > 0/);
  });
});
