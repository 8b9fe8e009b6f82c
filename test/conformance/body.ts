/** Conformance cases: body iteration and framing (SPEC §4, §8). */

import assert from 'node:assert/strict';
import request from 'supertest';
import type { App, AppLike, Body, Bytes, Environ, ResponseHeaders, StartResponse } from '../../src/types.js';
import { connect, deferred, header, headerAll, readUntil, sleep } from '../helpers/raw-http.js';
import { b, type SuiteContext } from './context.js';

/** The cases of body iteration and framing (SPEC §4, §8). */
export function bodyCases(c: SuiteContext): void {
  const { P, it, withServer, get, send } = c;
  const ok = (sr: StartResponse) => sr('200 OK', [['Content-Type', 'text/plain']]);

  it(
    'body.app-forms',
    'arrays, generators, async generators, custom iterables, class and object apps give the same bytes',
    async () => {
      class ClassApp implements Iterable<Bytes> {
        constructor(
          _e: Environ,
          private sr: StartResponse,
        ) {}
        *[Symbol.iterator]() {
          ok(this.sr);
          yield b('ab');
          yield b('c');
        }
      }
      const forms: AppLike[] = [
        (_e, sr) => (ok(sr), [b('ab'), b('c')]),
        (_e, sr) => (
          ok(sr),
          (function* () {
            yield b('a');
            yield b('bc');
          })()
        ),
        (_e, sr) => (
          ok(sr),
          (async function* () {
            yield b('abc');
          })()
        ),
        (_e, sr) => (ok(sr), { [Symbol.iterator]: () => [b('abc')][Symbol.iterator]() }),
        async (_e, sr) => (ok(sr), [b('abc')]),
        ClassApp,
        { call: (_e: Environ, sr: StartResponse) => (ok(sr), [b('a'), b('b'), b('c')]) },
      ];
      for (const app of forms) {
        await withServer(app, async (port) => {
          const r = await send(port, get('/'));
          assert.equal(r.responses[0]!.status, 200);
          assert.equal(r.responses[0]!.body.toString(), 'abc');
        });
      }
    },
  );

  it(
    'body.invalid-bodies',
    'a string, bare bytes, null, or non-bytes chunks give 500 with a clear log line',
    async () => {
      const bad: Array<[unknown, RegExp]> = [
        ['text', /returned a string/],
        [b('bytes'), /bare Buffer/],
        [null, /returned null/],
        [42, /returned a number/],
        [['text'], /yielded a string/],
        [[1, 2], /yielded a number/],
      ];
      for (const [value, msg] of bad) {
        const app: App = (_e, sr) => (ok(sr), value as Body);
        await withServer(app, async (port, log) => {
          const r = await send(port, get('/'));
          assert.equal(r.responses[0]!.status, 500);
          assert.match(log.text, msg);
        });
      }
    },
  );

  it(
    'body.lazy-start-response',
    'start_response may be called lazily in the first next(); never calling it gives 500',
    async () => {
      const lazy: App = (_e, sr) =>
        (async function* () {
          ok(sr);
          yield b('lazy');
        })();
      await withServer(lazy, async (port) => {
        const r = await send(port, get('/'));
        assert.equal(r.responses[0]!.body.toString(), 'lazy');
      });
      const never: App = () => [];
      await withServer(never, async (port, log) => {
        const r = await send(port, get('/'));
        assert.equal(r.responses[0]!.status, 500);
        assert.match(log.text, /start_response/);
      });
    },
  );

  it('body.empty-chunks', 'empty chunks send nothing and never end the chunked body early', async () => {
    const app: App = (_e, sr) =>
      (function* () {
        yield b('');
        ok(sr);
        yield b('');
        yield b('a');
        yield b('');
        yield b('b');
        yield b('');
      })();
    await withServer(app, async (port) => {
      const r = await send(port, get('/'));
      assert.equal(r.responses[0]!.body.toString(), 'ab');
      // HTTP/2 frames the body in DATA frames, where an empty one ends nothing.
      if (!c.h2) assert.equal(r.responses[0]!.chunked, true);
      assert.ok(!r.text.includes('\r\n0\r\n\r\n1\r\n'));
    });
  });

  it(
    'body.framing',
    'a one-chunk list gets Content-Length; a stream gets chunked on 1.1 and close-delimited on 1.0',
    async () => {
      const shared: ResponseHeaders = [['Content-Type', 'text/plain']];
      const list: App = (environ, sr) => (
        sr('200 OK', shared),
        [b(environ.PATH_INFO === '/long' ? 'hello world' : 'hello')]
      );
      await withServer(list, async (port) => {
        const r = await send(port, get('/') + get('/long'), { methods: ['GET', 'GET'] });
        assert.equal(header(r.responses[0]!, 'content-length'), '5');
        assert.equal(header(r.responses[1]!, 'content-length'), '11');
        assert.deepEqual(shared, [['Content-Type', 'text/plain']], "the app's header list is left as it was");
      });
      const stream: App = (_e, sr) => (
        ok(sr),
        (function* () {
          yield b('he');
          yield b('llo');
        })()
      );
      await withServer(stream, async (port) => {
        const r = await send(port, get('/'));
        assert.equal(r.responses[0]!.body.toString(), 'hello');
        if (c.h2) {
          // HTTP/2: no length, and the body runs to the end of the stream (SPEC §17.2).
          assert.equal(header(r.responses[0]!, 'content-length'), undefined);
          return;
        }
        assert.equal(header(r.responses[0]!, 'transfer-encoding'), 'chunked');
        const old = await send(port, `GET ${P}/ HTTP/1.0\r\n\r\n`, { waitForClose: true });
        assert.equal(header(old.responses[0]!, 'transfer-encoding'), undefined);
        assert.equal(old.closed, true);
        assert.equal(old.responses[0]!.body.toString(), 'hello');
      });
    },
  );

  it(
    'body.content-length-over',
    'more bytes than Content-Length: exactly CL sent, iteration stopped, connection reusable',
    async () => {
      let pulled = 0;
      let closed = 0;
      const app: App = (_e, sr) => {
        sr('200 OK', [
          ['Content-Type', 'text/plain'],
          ['Content-Length', '5'],
        ]);
        return {
          *[Symbol.iterator]() {
            for (const c of ['hel', 'lo wo', 'rld', '!!!']) {
              pulled++;
              yield b(c);
            }
          },
          close: () => void closed++,
        };
      };
      await withServer(app, async (port) => {
        const r = await send(port, get('/') + get('/'), { methods: ['GET', 'GET'] });
        assert.equal(r.responses.length, 2);
        assert.equal(r.responses[0]!.body.toString(), 'hello');
        assert.equal(r.responses[1]!.body.toString(), 'hello');
        assert.equal(pulled, 4, 'two chunks per response, then iteration stops');
        assert.equal(closed, 2);
      });
    },
  );

  it(
    'body.content-length-short',
    'fewer bytes than Content-Length: the connection is closed after them and it is logged',
    async () => {
      const app: App = (_e, sr) => {
        sr('200 OK', [
          ['Content-Type', 'text/plain'],
          ['Content-Length', '10'],
        ]);
        return [b('hel'), b('lo')];
      };
      await withServer(app, async (port, log) => {
        const r = await send(port, get('/') + get('/'), {
          methods: ['GET', 'GET'],
          waitForClose: true,
          timeout: 2000,
        });
        assert.equal(c.cutShort(r), true, 'the response is dropped, not completed');
        assert.equal(r.truncated, true);
        // Over HTTP/2 the second request is a stream of its own, answered in turn.
        assert.ok(c.h2 ? r.responses[0]!.body.toString() === 'hello' : r.text.endsWith('hello'), r.text);
        assert.match(log.text, /too few bytes \(5\).*\(10\)/);
      });
    },
  );

  it('body.head-204-304', 'HEAD sends no body and keeps the app Content-Length; 204 and 304 send no body', async () => {
    let pulled = 0;
    let closed = 0;
    const app: App = (environ, sr) => {
      const path = environ.PATH_INFO;
      if (path === '/204') {
        sr('204 No Content', [['Content-Length', '0']]);
        return [b('ignored')];
      }
      if (path === '/204-list') {
        sr('204 No Content', []);
        return [b('ignored')];
      }
      if (path === '/304') {
        sr('304 Not Modified', [['ETag', '"x"']]);
        return (function* () {
          yield b('ignored');
        })();
      }
      sr('200 OK', [
        ['Content-Type', 'text/plain'],
        ['Content-Length', '11'],
      ]);
      return {
        *[Symbol.iterator]() {
          for (;;) {
            pulled++;
            yield b('hello world');
          }
        },
        close: () => void closed++,
      };
    };
    await withServer(app, async (port) => {
      const r = await send(
        port,
        `HEAD ${P}/ HTTP/1.1\r\nHost: h\r\n\r\n` + get('/204') + get('/304') + get('/204-list'),
        {
          methods: ['HEAD', 'GET', 'GET', 'GET'],
          timeout: 2000,
        },
      );
      assert.equal(r.responses.length, 4);
      const [head, nc, nm, ncl] = r.responses;
      assert.equal(ncl!.status, 204);
      assert.equal(header(ncl!, 'content-length'), undefined, 'no Content-Length is added to a 204');
      assert.equal(head!.status, 200);
      assert.equal(header(head!, 'content-length'), '11');
      assert.ok(pulled <= 1, 'HEAD must not pump the body');
      assert.equal(closed, 1);
      assert.equal(nc!.status, 204);
      assert.equal(header(nc!, 'content-length'), undefined);
      assert.equal(header(nc!, 'transfer-encoding'), undefined);
      assert.equal(nm!.status, 304);
      assert.equal(header(nm!, 'transfer-encoding'), undefined);
      assert.equal(r.closed, false, 'the connection stays open');
      assert.ok(r.text.endsWith('\r\n\r\n'), 'nothing follows the last head');
    });
  });

  it(
    'body.backpressure',
    'chunks are not delayed; a client that never reads does not make the server buffer',
    async () => {
      const app: App = (_e, sr) =>
        (async function* () {
          ok(sr);
          yield b('first');
          await sleep(500);
          yield b('second');
        })();
      await withServer(app, async (port) => {
        const sock = await connect(port);
        const t0 = Date.now();
        sock.write(get('/'));
        await readUntil(sock, (t) => t.includes('first'));
        assert.ok(Date.now() - t0 < 400, 'first chunk must arrive before the app sleeps out');
        await readUntil(sock, (t) => t.includes('second'));
        sock.destroy();
      });
      let produced = 0;
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const flood: App = (_e, sr) =>
        (async function* () {
          ok(sr);
          for (;;) {
            produced += chunk.length;
            yield chunk;
          }
        })();
      await withServer(flood, async (port) => {
        const sock = await connect(port);
        sock.pause();
        sock.write(get('/'));
        await sleep(700);
        const after = produced;
        await sleep(300);
        assert.ok(produced < 64 * 1024 * 1024, `produced ${produced} bytes for a client that reads nothing`);
        assert.ok(produced - after <= 2 * chunk.length, 'production must stop while the client does not read');
        sock.destroy();
      });
    },
  );

  it(
    'body.client-disconnect',
    'a client disconnect mid-stream stops iteration, runs return() and close() once, aborts the signal',
    async () => {
      let finallyRan = 0;
      let closed = 0;
      let signal: AbortSignal | undefined;
      const done = deferred();
      const app: App = (environ, sr) => {
        signal = environ['nsgi.signal'];
        ok(sr);
        const gen = (async function* () {
          try {
            for (;;) {
              yield b('tick\n');
              await sleep(10);
            }
          } finally {
            finallyRan++;
          }
        })();
        return Object.assign(gen, {
          close() {
            closed++;
            done.resolve();
          },
        });
      };
      await withServer(app, async (port, log) => {
        const sock = await connect(port);
        sock.write(get('/'));
        await readUntil(sock, (t) => t.includes('tick'));
        sock.destroy();
        await done.promise;
        await sleep(50);
        assert.equal(closed, 1);
        assert.equal(finallyRan, 1);
        assert.equal(signal?.aborted, true);
        assert.ok(!/error/i.test(log.text), `a disconnect is not an app error: ${log.text}`);
      });
    },
  );

  it(
    'body.close-once',
    'close() is called exactly once on every path; async close is awaited; a throwing close is logged',
    async () => {
      const counts: Record<string, number> = {};
      const closing = (
        key: string,
        chunks: () => Iterable<Bytes> | AsyncIterable<Bytes>,
        closeImpl?: () => unknown,
      ): Body =>
        Object.assign(chunks(), {
          close() {
            counts[key] = (counts[key] ?? 0) + 1;
            return closeImpl?.();
          },
        }) as Body;
      let asyncCloseDone = false;
      const app: App = (environ, sr) => {
        const p = environ.PATH_INFO;
        switch (p) {
          case '/ok':
            ok(sr);
            return closing(p, () => [b('x')]);
          case '/iter-throw':
            ok(sr);
            return closing(p, function* () {
              yield b('x');
              throw new Error('iteration failed');
            });
          case '/sr-throw':
            return closing(p, function* () {
              sr('bad status', []);
              yield b('x');
            });
          case '/truncated':
            sr('200 OK', [
              ['Content-Length', '2'],
              ['Content-Type', 'text/plain'],
            ]);
            return closing(p, () => [b('abc'), b('def')]);
          case '/async-close':
            ok(sr);
            return closing(
              p,
              () => [b('x')],
              async () => {
                await sleep(30);
                asyncCloseDone = true;
              },
            );
          case '/close-throws':
            ok(sr);
            return closing(
              p,
              () => [b('x')],
              () => {
                throw new Error('close exploded');
              },
            );
          default:
            ok(sr);
            return closing('/head', () => [b('x')]);
        }
      };
      const records: number[] = [];
      await withServer(
        app,
        async (port, log) => {
          for (const p of ['/ok', '/iter-throw', '/sr-throw', '/truncated', '/async-close', '/close-throws']) {
            await send(port, get(p), { timeout: 2000 });
          }
          await send(port, `HEAD ${P}/head HTTP/1.1\r\nHost: h\r\n\r\n`, { methods: ['HEAD'] });
          await sleep(60);
          assert.deepEqual(counts, {
            '/ok': 1,
            '/iter-throw': 1,
            '/sr-throw': 1,
            '/truncated': 1,
            '/async-close': 1,
            '/close-throws': 1,
            '/head': 1,
          });
          assert.equal(asyncCloseDone, true);
          assert.match(log.text, /close exploded/);
          const r = await send(port, get('/ok'));
          assert.equal(r.responses[0]!.status, 200, 'the server keeps serving');
        },
        { onResponse: (rec) => records.push(rec.status) },
      );
      assert.ok(records.length >= 8);
    },
  );

  it('body.set-cookie-and-date', 'two Set-Cookie headers stay separate; Date is added once', async () => {
    const app: App = (environ, sr) => {
      const h: ResponseHeaders = [
        ['Content-Type', 'text/plain'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
      ];
      if (environ.PATH_INFO === '/dated') h.push(['Date', 'Tue, 01 Jan 2030 00:00:00 GMT']);
      sr('200 OK', h);
      return [b('x')];
    };
    await withServer(app, async (port) => {
      const r = await send(port, get('/') + get('/dated'), { methods: ['GET', 'GET'] });
      assert.deepEqual(headerAll(r.responses[0]!, 'set-cookie'), ['a=1', 'b=2']);
      assert.equal(headerAll(r.responses[0]!, 'date').length, 1);
      assert.deepEqual(headerAll(r.responses[1]!, 'date'), ['Tue, 01 Jan 2030 00:00:00 GMT']);
    });
  });

  it(
    'body.file-wrapper',
    'wsgi.file_wrapper reads from the current position, honours Content-Length and closes the file',
    async () => {
      let fileClosed = 0;
      const app: App = (environ, sr) => {
        const data = b('0123456789abcdef');
        let pos = 4;
        const file = {
          read(size?: number) {
            const out = data.subarray(pos, pos + (size ?? data.length));
            pos += out.length;
            return out;
          },
          close() {
            fileClosed++;
          },
        };
        sr('200 OK', [
          ['Content-Type', 'application/octet-stream'],
          ['Content-Length', '6'],
        ]);
        return environ['wsgi.file_wrapper'](file, 4);
      };
      await withServer(app, async (port) => {
        const r = await send(port, get('/'));
        assert.equal(r.responses[0]!.body.toString(), '456789');
        await sleep(20);
        assert.equal(fileClosed, 1);
      });
    },
  );

  it('body.wsgi-errors', 'wsgi.errors takes any Unicode and has flush() and writelines()', async () => {
    const app: App = (environ, sr) => {
      const errors = environ['wsgi.errors'];
      errors.write('ünïcødé ☃\n');
      errors.writelines(['a\n', 'b\n']);
      errors.flush();
      ok(sr);
      return [b('ok')];
    };
    await withServer(app, async (port, log) => {
      const r = await send(port, get('/'));
      assert.equal(r.responses[0]!.status, 200);
      assert.match(log.text, /ünïcødé ☃\na\nb\n/);
    });
  });

  it('body.keeps-serving', 'the server keeps serving after every kind of app failure (supertest)', async () => {
    const app: App = (environ, sr) => {
      if (environ.PATH_INFO === '/throw') throw new Error('sync throw');
      if (environ.PATH_INFO === '/reject') return Promise.reject(new Error('async reject'));
      ok(sr);
      return [b('alive')];
    };
    await withServer(app, async (port) => {
      if (c.h2) {
        // supertest speaks HTTP/1.1: over HTTP/2 the same three requests go as streams of one session.
        const r = await send(port, get('/throw') + get('/reject') + get('/'), { methods: ['GET', 'GET', 'GET'] });
        assert.deepEqual(
          r.responses.map((x) => x.status),
          [500, 500, 200],
        );
        assert.equal(r.responses[2]!.body.toString(), 'alive');
        return;
      }
      const agent = request(`http://127.0.0.1:${port}`);
      await agent.get(`${P}/throw`).expect(500);
      await agent.get(`${P}/reject`).expect(500);
      await agent.get(`${P}/`).expect(200, 'alive');
    });
  });
}
