/**
 * The conformance suite: the cases every host must pass (the node:http adapter now; Express,
 * Fastify and the raw server run the very same cases through their own factories).
 */

import assert from 'node:assert/strict';
import { describe, it as nodeIt } from 'node:test';
import request from 'supertest';
import { ClientDisconnectedError } from '../../src/errors.js';
import { decodeNative } from '../../src/native.js';
import type { App, AppLike, Body, Bytes, Environ, ResponseHeaders, StartResponse } from '../../src/types.js';
import { connect, deferred, header, headerAll, rawRequest, readUntil, sleep } from '../helpers/raw-http.js';
import { LogCapture, type FactoryOptions, type ServerFactory, type ServerHandle } from './harness.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const text = (environ: Environ) => JSON.stringify(cgi(environ));

/** The CGI keys (no dot) of an environ: what should be identical across hosts. */
function cgi(environ: Environ): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(environ)) if (!k.includes('.')) out[k] = v as string;
  return out;
}

export interface SuiteOptions {
  /** Mount prefix the host is configured with: '' or e.g. '/mnt'. */
  mount: string;
  /**
   * Cases the host cannot carry, by number, with the reason: what reaches the app through it has
   * lost what the case checks (the Fetch API's Headers join repeated fields, for one).
   */
  cannot?: Readonly<Record<string, string>> | undefined;
}

export function conformanceSuite(name: string, factory: ServerFactory, suite: SuiteOptions): void {
  const P = suite.mount;
  /** A case, unless the host cannot carry what it checks: then it is listed, with why, as skipped. */
  const it = (title: string, fn: () => Promise<void>): void => {
    const reason = suite.cannot?.[title.slice(0, title.indexOf('.'))];
    if (reason === undefined) void nodeIt(title, fn);
    else void nodeIt.skip(`${title} (not carried by this host: ${reason})`, fn);
  };

  /** Starts a server for `app`, runs `fn`, always closes. */
  async function withServer(
    app: AppLike,
    fn: (port: number, log: LogCapture) => Promise<void>,
    extra: Partial<FactoryOptions> = {},
  ): Promise<void> {
    const log = new LogCapture();
    const server: ServerHandle = await factory(app, { mount: P, errorLog: log, ...extra });
    try {
      await fn(server.port, log);
    } finally {
      await server.close();
    }
  }

  /** An app that records each environ and answers 200 with the CGI keys as JSON. */
  function probe() {
    const seen: Environ[] = [];
    const app: App = (environ, startResponse) => {
      seen.push(environ);
      startResponse('200 OK', [['Content-Type', 'application/json']]);
      return [Buffer.from(text(environ), 'latin1')];
    };
    return { app, seen };
  }

  /** GET (or another request) through a raw socket; returns the environ the app saw. */
  async function environFor(reqText: string, extra: Partial<FactoryOptions> = {}): Promise<Environ> {
    const { app, seen } = probe();
    let env: Environ | undefined;
    await withServer(
      app,
      async (port) => {
        const r = await rawRequest(port, reqText);
        assert.equal(r.responses[0]?.status, 200, r.text);
        env = seen[0];
      },
      extra,
    );
    return env!;
  }

  const get = (path: string, headers = '') => `GET ${P}${path} HTTP/1.1\r\nHost: test.local\r\n${headers}\r\n`;

  describe(`conformance: ${name}${P ? ` mounted at ${P}` : ' at the root'}`, () => {
    describe('environ', () => {
      it('1. maps the request line and the wsgi keys', async () => {
        const e = await environFor(get('/x?y=1'));
        assert.equal(e.REQUEST_METHOD, 'GET');
        assert.equal(e.SCRIPT_NAME, P);
        assert.equal(e.PATH_INFO, '/x');
        assert.equal(e.QUERY_STRING, 'y=1');
        assert.equal(e.SERVER_PROTOCOL, 'HTTP/1.1');
        assert.equal(e.REQUEST_URI, `${P}/x?y=1`);
        assert.deepEqual([...e['wsgi.version']], [1, 0]);
        assert.equal(e['wsgi.url_scheme'], 'http');
        assert.equal(e['wsgi.multithread'], false);
        assert.equal(e['wsgi.multiprocess'], false);
        assert.equal(e['wsgi.run_once'], false);
        assert.equal(e['wsgi.input_terminated'], true);
        assert.equal(typeof e['wsgi.file_wrapper'], 'function');
        assert.ok(e['nsgi.signal'] instanceof AbortSignal);
        assert.equal(e['nsgi.signal'].aborted, false);
        assert.equal(Object.getPrototypeOf(e), Object.prototype);
      });

      it('2. root path gives PATH_INFO "/" and an empty QUERY_STRING that is present', async () => {
        const e = await environFor(get('/'));
        assert.equal(e.SCRIPT_NAME, P);
        assert.equal(e.PATH_INFO, '/');
        assert.ok('QUERY_STRING' in e);
        assert.equal(e.QUERY_STRING, '');
        assert.notEqual(e.SCRIPT_NAME, '/');
      });

      if (P !== '') {
        it('3. mount boundaries: prefix, prefix/, prefix/x/y, and a longer segment not dispatched', async () => {
          const { app, seen } = probe();
          await withServer(app, async (port) => {
            for (const path of [P, `${P}/`, `${P}/x/y`]) {
              const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`);
              assert.equal(r.responses[0]!.status, 200);
            }
            assert.deepEqual(
              seen.map((e) => [e.SCRIPT_NAME, e.PATH_INFO]),
              [
                [P, ''],
                [P, '/'],
                [P, '/x/y'],
              ],
            );
            const r = await rawRequest(port, `GET ${P}ple HTTP/1.1\r\nHost: h\r\n\r\n`);
            assert.equal(r.responses[0]!.status, 404);
            assert.equal(seen.length, 3, 'the app must not see a path outside its mount');
          });
        });
      }

      it('4. PATH_INFO is percent-decoded to latin-1 bytes (UTF-8 arrives as mojibake)', async () => {
        const e = await environFor(get('/caf%C3%A9'));
        assert.equal(e.PATH_INFO, '/caf\u00C3\u00A9');
        assert.equal(decodeNative(e.PATH_INFO), '/café');
      });

      it('5. decoding is lossless: %FF%00, %2F, + and malformed escapes', async () => {
        assert.equal((await environFor(get('/%FF%00x'))).PATH_INFO, '/\u00FF\u0000x');
        const slash = await environFor(get('/a%2Fb'));
        assert.equal(slash.PATH_INFO, '/a/b');
        assert.equal(slash.REQUEST_URI, `${P}/a%2Fb`);
        assert.equal((await environFor(get('/a+b'))).PATH_INFO, '/a+b');
        assert.equal((await environFor(get('/%zz'))).PATH_INFO, '/%zz');
      });

      it('6. QUERY_STRING is raw, byte for byte', async () => {
        assert.equal((await environFor(get('/q?q=a+b%20c&x=%E2%82%AC'))).QUERY_STRING, 'q=a+b%20c&x=%E2%82%AC');
        // A raw byte >= 0x80 is outside the request-target grammar (RFC 9112 §3.2): a host may refuse
        // it with 400 (Node's parser does); one that accepts it must map it byte for byte.
        const { app, seen } = probe();
        await withServer(app, async (port) => {
          const r = await rawRequest(port, get('/q?x=\u00e9'));
          if (r.responses[0]!.status === 400) assert.equal(seen.length, 0);
          else assert.equal(seen[0]!.QUERY_STRING, 'x=\u00e9');
        });
      });

      it('7. a fragment is removed from PATH_INFO and QUERY_STRING, kept in REQUEST_URI', async () => {
        const e = await environFor(get('/p?q#frag'));
        assert.equal(e.PATH_INFO, '/p');
        assert.equal(e.QUERY_STRING, 'q');
        assert.equal(e.REQUEST_URI, `${P}/p?q#frag`);
      });

      it('9. Content-Type and Content-Length become CONTENT_TYPE/CONTENT_LENGTH, never HTTP_*', async () => {
        const e = await environFor(
          `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello`,
        );
        assert.equal(e.CONTENT_TYPE, 'text/plain');
        assert.equal(e.CONTENT_LENGTH, '5');
        assert.ok(!('HTTP_CONTENT_TYPE' in e));
        assert.ok(!('HTTP_CONTENT_LENGTH' in e));
      });

      it('10. no Content-Type or Content-Length header: no key', async () => {
        const e = await environFor(get('/'));
        assert.ok(!('CONTENT_TYPE' in e));
        assert.ok(!('CONTENT_LENGTH' in e) || e.CONTENT_LENGTH === '');
      });

      it('11. header names map to HTTP_*, case-insensitively, with OWS trimmed', async () => {
        const e = await environFor(get('/', 'X-Custom-Thing:   v \r\nx-other-thing: w\r\n'));
        assert.equal(e.HTTP_X_CUSTOM_THING, 'v');
        assert.equal(e.HTTP_X_OTHER_THING, 'w');
        assert.equal(e.HTTP_HOST, 'test.local');
      });

      it('12. duplicates are joined with ", " in order; Cookie with "; "; raw pairs keep them all', async () => {
        const e = await environFor(get('/', 'Accept: a\r\nCookie: a=1\r\nAccept: b\r\nCookie: b=2\r\n'));
        assert.equal(e.HTTP_ACCEPT, 'a, b');
        assert.equal(e.HTTP_COOKIE, 'a=1; b=2');
        assert.deepEqual(
          e['nsgi.raw_headers'].filter(([n]) => n !== 'Host').map(([n, v]) => [n, v]),
          [
            ['Accept', 'a'],
            ['Cookie', 'a=1'],
            ['Accept', 'b'],
            ['Cookie', 'b=2'],
          ],
        );
      });

      it('13. header names with "_" are dropped, so they cannot spoof dashed ones', async () => {
        const e = await environFor(get('/', 'X_Auth_User: evil\r\nX-Auth-User: ok\r\n'));
        assert.equal(e.HTTP_X_AUTH_USER, 'ok');
        const lone = await environFor(get('/', 'X_Auth_User: evil\r\n'));
        assert.ok(!('HTTP_X_AUTH_USER' in lone));
        assert.ok(
          lone['nsgi.raw_headers'].some(([n]) => n === 'X_Auth_User'),
          'raw headers keep what was received',
        );
      });

      it('14. obs-text bytes in a header value arrive as the same latin-1 code points', async () => {
        const e = await environFor(
          Buffer.concat([
            b(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-Bytes: `),
            Buffer.from([0x80, 0xe9, 0xff]),
            b('\r\n\r\n'),
          ]).toString('latin1'),
        );
        assert.equal(e.HTTP_X_BYTES, '\u0080\u00e9\u00ff');
      });

      it('15. every CGI value is a native string', async () => {
        const { app, seen } = probe();
        await withServer(app, async (port) => {
          const reqs = [
            get('/a%C3%A9?x=%FF', 'X-A: \u00e9\u00ff\r\n'),
            `POST ${P}/p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Type: a/b\r\n\r\nhi`,
            `DELETE ${P}/%F0%9F%98%80 HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: b=\u00e9\r\n\r\n`,
            `OPTIONS ${P}/ HTTP/1.0\r\nHost: h\r\n\r\n`,
          ];
          for (const r of reqs) await rawRequest(port, b(r));
          assert.equal(seen.length, reqs.length);
          for (const e of seen) {
            for (const [k, v] of Object.entries(e)) {
              if (k.includes('.')) continue;
              assert.equal(typeof v, 'string', k);
              // eslint-disable-next-line no-control-regex -- a native string is any run of U+0000..U+00FF
              assert.ok(!/[^\x00-\xff]/.test(v as string), `${k} is not native`);
            }
          }
        });
      });

      it('16. SERVER_NAME and SERVER_PORT are set; the port is digits', async () => {
        const e = await environFor(get('/'));
        assert.ok(e.SERVER_NAME.length > 0);
        assert.match(e.SERVER_PORT, /^\d+$/);
        assert.equal(e.REMOTE_ADDR, '127.0.0.1');
        assert.match(e.REMOTE_PORT ?? '', /^\d+$/);
      });

      it('17. X-Forwarded-* are not trusted by default, and are with a trusted proxy', async () => {
        const fwd = 'X-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9\r\n';
        const untrusted = await environFor(get('/', fwd));
        assert.equal(untrusted['wsgi.url_scheme'], 'http');
        assert.equal(untrusted.REMOTE_ADDR, '127.0.0.1');
        assert.equal(untrusted.HTTP_X_FORWARDED_FOR, '203.0.113.9');
        const trusted = await environFor(get('/', fwd), { trustProxy: 'loopback' });
        assert.equal(trusted['wsgi.url_scheme'], 'https');
        assert.equal(trusted.HTTPS, 'on');
        assert.equal(trusted.REMOTE_ADDR, '203.0.113.9');
      });

      it('18. process environment variables never leak into environ', async () => {
        process.env.HTTP_PROXY = 'http://evil.example';
        try {
          const e = await environFor(get('/'));
          assert.ok(!('HTTP_PROXY' in e));
        } finally {
          delete process.env.HTTP_PROXY;
        }
      });

      it('19. each request gets a fresh environ, even on one keep-alive connection', async () => {
        const seen: Environ[] = [];
        const app: App = (environ, startResponse) => {
          seen.push(environ);
          const leaked = 'x.added' in environ;
          environ['x.added'] = true;
          startResponse('200 OK', [['Content-Type', 'text/plain']]);
          return [b(leaked ? 'leaked' : 'fresh')];
        };
        await withServer(app, async (port) => {
          const r = await rawRequest(port, get('/1') + get('/2'), { methods: ['GET', 'GET'] });
          assert.deepEqual(
            r.responses.map((x) => x.body.toString()),
            ['fresh', 'fresh'],
          );
          assert.notEqual(seen[0], seen[1]);
        });
      });
    });

    describe('wsgi.input', () => {
      /** An app that runs `reader` on wsgi.input and answers with what it returned, as JSON. */
      function reading(reader: (input: Environ['wsgi.input'], environ: Environ) => Promise<unknown>) {
        const results: unknown[] = [];
        const app: App = async (environ, startResponse) => {
          const out = await reader(environ['wsgi.input'], environ);
          results.push(out);
          startResponse('200 OK', [['Content-Type', 'application/json']]);
          return [b(JSON.stringify(out))];
        };
        return { app, results };
      }
      const post = (body: string, extra = '') =>
        `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n${extra}\r\n${body}`;
      const s = (x: Bytes) => Buffer.from(x).toString('latin1');

      it('20. read() returns the body then empty bytes; read(n) returns exactly n', async () => {
        const { app } = reading(async (input) => [s(await input.read()), (await input.read()).length]);
        await withServer(app, async (port) => {
          const r = await rawRequest(port, post('hello world'));
          assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['hello world', 0]);
        });
        const five = reading(async (input) => [
          s(await input.read(5)),
          s(await input.read(100)),
          s(await input.read(1)),
        ]);
        await withServer(five.app, async (port) => {
          const r = await rawRequest(port, post('hello world'));
          assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['hello', ' world', '']);
        });
      });

      it('21. EOF comes at the end of the body, never inside the next pipelined request', async () => {
        const { app } = reading(async (input) => [s(await input.read(100)), s(await input.read(100))]);
        await withServer(app, async (port) => {
          const r = await rawRequest(port, post('12345') + post('abc'), { methods: ['POST', 'POST'] });
          assert.equal(r.responses.length, 2);
          assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['12345', '']);
          assert.deepEqual(JSON.parse(r.responses[1]!.body.toString()), ['abc', '']);
        });
      });

      it('21b. twenty pipelined requests on one connection are answered in order', async () => {
        const app: App = async (environ, sr) => {
          const body = await environ['wsgi.input'].read();
          // Finish out of order on purpose: later requests must still wait for earlier responses.
          await sleep(Number(environ.QUERY_STRING) % 3);
          sr('200 OK', [['Content-Type', 'text/plain']]);
          return [b(`${environ.QUERY_STRING}:${Buffer.from(body).toString()}`)];
        };
        await withServer(app, async (port) => {
          const reqs: string[] = [];
          const methods: string[] = [];
          for (let i = 0; i < 20; i++) {
            if (i % 2) reqs.push(`POST ${P}/?${i} HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nb${i % 10}`);
            else reqs.push(`${i % 4 === 0 ? 'HEAD' : 'GET'} ${P}/?${i} HTTP/1.1\r\nHost: h\r\n\r\n`);
            methods.push(i % 2 ? 'POST' : i % 4 === 0 ? 'HEAD' : 'GET');
          }
          const r = await rawRequest(port, reqs.join(''), { methods, timeout: 4000 });
          assert.equal(r.responses.length, 20);
          r.responses.forEach((res, i) => {
            assert.equal(res.status, 200);
            const expected = methods[i] === 'HEAD' ? '' : `${i}:${i % 2 ? `b${i % 10}` : ''}`;
            assert.equal(res.body.toString(), expected, `response ${i}`);
          });
          assert.equal(r.closed, false);
        });
      });

      it('22. a request without a body reads as empty at once', async () => {
        const { app } = reading(async (input) => (await input.read()).length);
        await withServer(app, async (port) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.body.toString(), '0');
        });
      });

      it('23. readline, readline(size), readlines and async iteration', async () => {
        const { app } = reading(async (input) => {
          const out = [
            s(await input.readline()),
            s(await input.readline(2)),
            s(await input.readline()),
            s(await input.readline()),
            s(await input.readline()),
          ];
          return out;
        });
        await withServer(app, async (port) => {
          const r = await rawRequest(port, post('a\nbb\nccc'));
          assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['a\n', 'bb', '\n', 'ccc', '']);
        });
        const lines = reading(async (input) => (await input.readlines()).map(s));
        await withServer(lines.app, async (port) => {
          const r = await rawRequest(port, post('a\nbb\nccc'));
          assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['a\n', 'bb\n', 'ccc']);
        });
        const iter = reading(async (input) => {
          const out: string[] = [];
          for await (const line of input) out.push(s(line));
          return out;
        });
        await withServer(iter.app, async (port) => {
          const r = await rawRequest(port, post('x\ny\n'));
          assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['x\n', 'y\n']);
        });
      });

      it('24. a chunked body is de-chunked; no TRANSFER_ENCODING or CONTENT_LENGTH key', async () => {
        const { app } = reading(async (input, environ) => ({
          body: s(await input.read()),
          terminated: environ['wsgi.input_terminated'],
          te: 'HTTP_TRANSFER_ENCODING' in environ,
          cl: environ.CONTENT_LENGTH ?? null,
        }));
        await withServer(app, async (port) => {
          const r = await rawRequest(
            port,
            `POST ${P}/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
          );
          assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), {
            body: 'hello world',
            terminated: true,
            te: false,
            cl: null,
          });
        });
      });

      it('25. a body cut short by the client rejects read(), aborts nsgi.signal and still closes', async () => {
        let outcome: unknown;
        let closed = 0;
        let signalAborted = false;
        const done = deferred();
        const app: App = async (environ, startResponse) => {
          try {
            await environ['wsgi.input'].read();
            outcome = 'resolved';
          } catch (err) {
            outcome = err;
          }
          await sleep(20);
          signalAborted = environ['nsgi.signal'].aborted;
          startResponse('200 OK', [['Content-Type', 'text/plain']]);
          return {
            *[Symbol.iterator]() {
              yield b('x');
            },
            close() {
              closed++;
              done.resolve();
            },
          };
        };
        await withServer(app, async (port) => {
          const sock = await connect(port);
          sock.write(`POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345`);
          await sleep(50);
          sock.end();
          await done.promise;
          assert.ok(outcome instanceof ClientDisconnectedError, `read() must reject, got ${String(outcome)}`);
          assert.equal(signalAborted, true);
          assert.equal(closed, 1);
          sock.destroy();
        });
      });

      it('26. Expect: 100-continue is answered on the first read, and never when the app answers first', async () => {
        const { app } = reading(async (input) => s(await input.read()));
        await withServer(app, async (port) => {
          const sock = await connect(port);
          sock.write(`POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
          await readUntil(sock, (t) => t.includes('100 Continue'));
          sock.write('hello');
          const rest = await readUntil(sock, (t) => t.includes('"hello"'));
          assert.match(rest, /200 OK/);
          sock.destroy();
        });
        const refusing: App = (_environ, startResponse) => {
          startResponse('413 Content Too Large', [['Content-Type', 'text/plain']]);
          return [b('no')];
        };
        await withServer(refusing, async (port) => {
          const r = await rawRequest(
            port,
            `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n`,
            { waitForClose: true, timeout: 2000 },
          );
          assert.ok(!r.text.includes('100 Continue'), r.text);
          assert.equal(r.responses[0]!.status, 413);
          assert.equal(r.closed, true, 'unread body that large must close the connection');
          // Even a small announced body: the client may still send it after the answer, where it
          // would be read as the next request.
          const small = await rawRequest(
            port,
            `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
            { waitForClose: true, timeout: 2000 },
          );
          assert.ok(!small.text.includes('100 Continue'), small.text);
          assert.equal(small.responses[0]!.status, 413);
          assert.equal(small.closed, true, 'a body never asked for closes the connection');
        });
      });

      it('27. a body over the limit is refused with 413 (declared: before the app; chunked: on read)', async () => {
        let called = 0;
        const { app } = reading(async (input) => {
          called++;
          return s(await input.read());
        });
        await withServer(
          app,
          async (port) => {
            const r = await rawRequest(port, post('x'.repeat(11)), { waitForClose: true, timeout: 2000 });
            assert.equal(r.responses[0]!.status, 413);
            assert.equal(called, 0);
            const c = await rawRequest(
              port,
              `POST ${P}/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n`,
              { waitForClose: true, timeout: 2000 },
            );
            assert.equal(c.responses[0]!.status, 413);
            assert.equal(called, 1);
            const ok = await rawRequest(port, post('x'.repeat(10)));
            assert.equal(ok.responses[0]!.status, 200);
          },
          { maxBodySize: 10 },
        );
      });

      it('28. an unread body does not corrupt the next request on the connection', async () => {
        const app: App = (environ, startResponse) => {
          startResponse('200 OK', [['Content-Type', 'text/plain']]);
          return [b(environ.PATH_INFO)];
        };
        await withServer(app, async (port) => {
          const big = 'x'.repeat(1024 * 1024);
          const r = await rawRequest(
            port,
            `POST ${P}/one HTTP/1.1\r\nHost: h\r\nContent-Length: ${big.length}\r\n\r\n${big}` + get('/two'),
            {
              methods: ['POST', 'GET'],
              timeout: 3000,
            },
          );
          assert.equal(r.responses[0]!.body.toString(), '/one');
          if (r.responses.length > 1) assert.equal(r.responses[1]!.body.toString(), '/two');
          else assert.equal(r.closed, true, 'either the next request is answered or the connection is closed');
        });
      });
    });

    describe('malformed requests are refused before the app runs', () => {
      let calls = 0;
      const app: App = (_e, startResponse) => {
        calls++;
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return [b('ok')];
      };
      async function refused(reqText: string | Buffer, statuses: number[], mustClose = true): Promise<void> {
        const before = calls;
        await withServer(app, async (port) => {
          const r = await rawRequest(port, reqText, { waitForClose: mustClose, timeout: 2000 });
          assert.ok(
            r.responses.length >= 1,
            `no response to ${JSON.stringify(reqText.toString().slice(0, 80))}: ${r.text}`,
          );
          assert.ok(
            statuses.includes(r.responses[0]!.status),
            `got ${r.responses[0]!.status} for ${JSON.stringify(reqText.toString().slice(0, 80))}`,
          );
          if (mustClose) {
            assert.equal(r.closed, true, 'the connection must be closed');
            assert.equal(r.responses.length, 1, `exactly one response, then the close: ${r.text}`);
          }
        });
        assert.equal(calls, before, 'the app must not be called');
      }

      it('29. Content-Length with Transfer-Encoding', async () => {
        await refused(
          `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
          [400],
        );
      });
      it('30. invalid Content-Length values and duplicates', async () => {
        for (const v of ['1x', '-1', '+5', '1 2', '0x10', '5,5']) {
          await refused(`POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: ${v}\r\n\r\nhello`, [400]);
        }
        await refused(`POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, [400]);
      });
      it('31. missing or duplicate Host, duplicate Content-Type', async () => {
        await refused(`GET ${P}/ HTTP/1.1\r\n\r\n`, [400]);
        await refused(`GET ${P}/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, [400]);
        await refused(`GET ${P}/ HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n`, [400], false);
      });
      it('31b. a Host that is not host[:port]: userinfo, a path, a list, whitespace, a bad port', async () => {
        for (const host of ['user@h', 'h/p', 'a,b', 'a, b', 'a b', 'h:8x', '[::1']) {
          await refused(`GET ${P}/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`, [400]);
        }
        await refused(`GET http://user@h${P}/ HTTP/1.1\r\nHost: h\r\n\r\n`, [400]);
      });
      it('32. unsupported or malformed Transfer-Encoding', async () => {
        for (const te of ['gzip, chunked', 'chunked, chunked', 'identity', '\x0bchunked']) {
          await refused(`POST ${P}/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`, [400, 501]);
        }
        await refused(`POST ${P}/ HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, [400, 501]);
      });
      it('33. obs-fold, whitespace before the colon, NUL and bare CR in headers', async () => {
        await refused(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n`, [400]);
        await refused(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-A : a\r\n\r\n`, [400]);
        await refused(b(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n`), [400]);
        await refused(b(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n`), [400]);
      });
      it('33b. a bare CR with no LF after it is refused at once, not after a timeout', async () => {
        for (const head of [`GET ${P}/ HTTP/1.1\rHost: h\r\r`, `GET ${P}/ HTTP/1.1\r\nHost: h\rX: y\r\r`]) {
          const started = Date.now();
          await refused(b(head), [400]);
          assert.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
        }
      });
      it('34. request-target too long (414), header section too large (431), bad chunk size (400)', async () => {
        await refused(`GET ${P}/${'a'.repeat(9000)} HTTP/1.1\r\nHost: h\r\n\r\n`, [414], false);
        await refused(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(70000)}\r\n\r\n`, [431]);
      });
      it('34b. a malformed chunk size fails the body read: 400 or a closed connection, never a hang', async () => {
        let outcome = '';
        const reader: App = async (environ, sr) => {
          try {
            await environ['wsgi.input'].read();
            outcome = 'read';
          } catch (err) {
            outcome = (err as Error).name;
            throw err;
          }
          sr('200 OK', [['Content-Type', 'text/plain']]);
          return [b('ok')];
        };
        await withServer(reader, async (port) => {
          const r = await rawRequest(
            port,
            `POST ${P}/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
            {
              waitForClose: true,
              timeout: 2000,
            },
          );
          assert.equal(r.closed, true);
          if (r.responses.length > 0) assert.equal(r.responses[0]!.status, 400);
        });
        assert.notEqual(outcome, 'read');
      });
      it('35. an unknown expectation gets 417', async () => {
        await refused(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n`, [417], false);
      });
    });

    describe('start_response', () => {
      /** Runs `attempt` inside an app; the app answers 200 "threw:<code>" or "ok", or lets errors escape. */
      async function attempt(fn: (sr: StartResponse) => void): Promise<string> {
        let result = '';
        const app: App = (_e, startResponse) => {
          try {
            fn(startResponse);
            result = 'ok';
          } catch (err) {
            result = `threw:${(err as { code?: string }).code ?? (err as Error).name}`;
          }
          return [];
        };
        await withServer(app, async (port) => {
          await rawRequest(port, get('/'));
        });
        return result;
      }

      it('36. status strings: valid ones accepted, malformed ones thrown, uncaught gives 500', async () => {
        for (const s of ['200 OK', '404 Not Found', '200 ', '599 Whatever \u00e9']) {
          assert.equal(await attempt((sr) => sr(s, [])), 'ok', s);
        }
        for (const s of [
          '200',
          'OK',
          '2000 X',
          '200  OK',
          ' 200 OK',
          '200 OK ',
          '200 OK\r\n',
          '200 O\x00K',
          '200\tOK',
          200,
          '099 X',
          '100 Continue',
        ]) {
          assert.match(await attempt((sr) => sr(s as string, [])), /^threw:ERR_NSGI_/, String(s));
        }
        const app: App = (_e, sr) => {
          sr('200  OK', []);
          return [];
        };
        await withServer(app, async (port, log) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.status, 500);
          assert.match(log.text, /invalid status/);
        });
      });

      it('37. headers must be an array of [string, string] pairs with native values', async () => {
        for (const h of [
          { 'Content-Type': 'x' },
          [['a', 'b', 'c']],
          [['X-N', 5]],
          [['X-E', '€']],
          [['X-U', undefined]],
        ]) {
          assert.match(
            await attempt((sr) => sr('200 OK', h as unknown as ResponseHeaders)),
            /^threw:ERR_NSGI_/,
            JSON.stringify(h),
          );
        }
      });

      it('38. CR/LF in a header value is refused and never reaches the wire', async () => {
        const app: App = (_e, sr) => {
          sr('200 OK', [['X-A', 'a\r\nSet-Cookie: x=1']]);
          return [b('body')];
        };
        await withServer(app, async (port) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.status, 500);
          assert.ok(!/set-cookie/i.test(r.text));
        });
      });

      it('39. invalid header names', async () => {
        for (const n of ['X Foo', 'X:Foo', '', 'Status', 'X-\u00e9']) {
          assert.match(await attempt((sr) => sr('200 OK', [[n, 'v']])), /^threw:ERR_NSGI_/, n);
        }
      });

      it('40. hop-by-hop headers, in any case', async () => {
        for (const n of [
          'Connection',
          'keep-alive',
          'Transfer-Encoding',
          'UPGRADE',
          'TE',
          'Trailer',
          'Proxy-Authenticate',
          'Proxy-Authorization',
        ]) {
          assert.equal(await attempt((sr) => sr('200 OK', [[n, 'x']])), 'threw:ERR_NSGI_HOP_BY_HOP_HEADER', n);
        }
      });

      it('41. a second call without excInfo throws, also after a first call that threw', async () => {
        assert.equal(
          await attempt((sr) => {
            sr('200 OK', []);
            sr('200 OK', []);
          }),
          'threw:ERR_NSGI_START_RESPONSE_TWICE',
        );
        assert.equal(
          await attempt((sr) => {
            try {
              sr('bad', []);
            } catch {
              /* ignored */
            }
            sr('200 OK', []);
          }),
          'threw:ERR_NSGI_START_RESPONSE_TWICE',
        );
      });

      it('42. excInfo before any body replaces the status and headers', async () => {
        const app: App = (_e, sr) => {
          sr('200 OK', [
            ['Content-Type', 'text/plain'],
            ['X-First', '1'],
          ]);
          try {
            throw new Error('boom');
          } catch (err) {
            sr(
              '500 Oops',
              [
                ['Content-Type', 'text/plain'],
                ['X-Second', '2'],
              ],
              err,
            );
          }
          return [b('sorry')];
        };
        await withServer(app, async (port) => {
          const r = await rawRequest(port, get('/'));
          const res = r.responses[0]!;
          assert.equal(res.status, 500);
          assert.equal(res.reason, 'Oops');
          assert.equal(header(res, 'x-second'), '2');
          assert.equal(header(res, 'x-first'), undefined);
          assert.equal(res.body.toString(), 'sorry');
        });
      });

      it('43. excInfo after headers were sent re-throws that very error and the response is aborted', async () => {
        let rethrown: unknown;
        const original = new Error('late failure');
        let closed = 0;
        const app: App = (_e, sr) => {
          sr('200 OK', [['Content-Type', 'text/plain']]);
          return {
            async *[Symbol.asyncIterator]() {
              yield b('part one');
              try {
                sr('500 Oops', [['Content-Type', 'text/plain']], original);
              } catch (err) {
                rethrown = err;
                throw err;
              }
            },
            close() {
              closed++;
            },
          };
        };
        await withServer(app, async (port, log) => {
          const r = await rawRequest(port, get('/'), { waitForClose: true, timeout: 2000 });
          assert.equal(rethrown, original);
          assert.equal(r.closed, true);
          assert.equal(r.responses[0]!.status, 200);
          assert.equal(r.responses[0]!.chunked, false, 'no chunked terminator after an abort');
          assert.ok(r.text.includes('part one'));
          assert.equal(closed, 1);
          assert.match(log.text, /late failure/);
        });
      });

      it('44. a throw after start_response but before the first chunk gives 500, never the stored 200', async () => {
        const app: App = (_e, sr) => {
          sr('200 OK', [
            ['Content-Type', 'text/plain'],
            ['X-Leak', 'yes'],
          ]);
          return (function* () {
            yield new Uint8Array(0);
            throw new Error('early');
          })();
        };
        await withServer(app, async (port) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.status, 500);
          assert.equal(header(r.responses[0]!, 'x-leak'), undefined);
        });
      });

      it('45. write(): sends at once, rejects strings, and nothing is sent without a valid start_response', async () => {
        const gate = deferred();
        let stringError = '';
        const app: App = async (_environ, sr) => {
          const write = sr('200 OK', [['Content-Type', 'text/plain']]);
          try {
            await write('text' as unknown as Bytes);
          } catch (err) {
            stringError = (err as { code: string }).code;
          }
          await write(b('first|'));
          await gate.promise;
          return [b('second')];
        };
        await withServer(app, async (port) => {
          const sock = await connect(port);
          sock.write(get('/'));
          const got = await readUntil(sock, (t) => t.includes('first|'));
          assert.match(got, /Transfer-Encoding: chunked/);
          gate.resolve();
          const all = await readUntil(sock, (t) => t.includes('0\r\n\r\n'));
          assert.match(all, /second/);
          sock.destroy();
        });
        assert.equal(stringError, 'ERR_NSGI_INVALID_CHUNK');

        const noStart: App = () =>
          (async function* () {
            yield b('data before start_response');
          })();
        await withServer(noStart, async (port, log) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.status, 500);
          assert.match(log.text, /before calling start_response/);
        });

        let writeError = '';
        const failedReplace: App = async (_e, sr) => {
          const write = sr('200 OK', [['Content-Type', 'text/plain']]);
          try {
            sr('not a status', [], new Error('handled'));
          } catch {
            /* the replacement was invalid */
          }
          try {
            await write(b('x'));
          } catch (err) {
            writeError = (err as { code: string }).code;
            throw err;
          }
          return [];
        };
        await withServer(failedReplace, async (port) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.status, 500);
        });
        assert.equal(writeError, 'ERR_NSGI_START_RESPONSE_FAILED');
      });
    });

    describe('body iteration and framing', () => {
      const ok = (sr: StartResponse) => sr('200 OK', [['Content-Type', 'text/plain']]);

      it('46. arrays, generators, async generators, custom iterables, class and object apps give the same bytes', async () => {
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
            const r = await rawRequest(port, get('/'));
            assert.equal(r.responses[0]!.status, 200);
            assert.equal(r.responses[0]!.body.toString(), 'abc');
          });
        }
      });

      it('47. a string, bare bytes, null, or non-bytes chunks give 500 with a clear log line', async () => {
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
            const r = await rawRequest(port, get('/'));
            assert.equal(r.responses[0]!.status, 500);
            assert.match(log.text, msg);
          });
        }
      });

      it('48. start_response may be called lazily in the first next(); never calling it gives 500', async () => {
        const lazy: App = (_e, sr) =>
          (async function* () {
            ok(sr);
            yield b('lazy');
          })();
        await withServer(lazy, async (port) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.body.toString(), 'lazy');
        });
        const never: App = () => [];
        await withServer(never, async (port, log) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.status, 500);
          assert.match(log.text, /start_response/);
        });
      });

      it('49. empty chunks send nothing and never end the chunked body early', async () => {
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
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.body.toString(), 'ab');
          assert.equal(r.responses[0]!.chunked, true);
          assert.ok(!r.text.includes('\r\n0\r\n\r\n1\r\n'));
        });
      });

      it('50. a one-chunk list gets Content-Length; a stream gets chunked on 1.1 and close-delimited on 1.0', async () => {
        const shared: ResponseHeaders = [['Content-Type', 'text/plain']];
        const list: App = (environ, sr) => (
          sr('200 OK', shared),
          [b(environ.PATH_INFO === '/long' ? 'hello world' : 'hello')]
        );
        await withServer(list, async (port) => {
          const r = await rawRequest(port, get('/') + get('/long'), { methods: ['GET', 'GET'] });
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
          const r = await rawRequest(port, get('/'));
          assert.equal(header(r.responses[0]!, 'transfer-encoding'), 'chunked');
          assert.equal(r.responses[0]!.body.toString(), 'hello');
          const old = await rawRequest(port, `GET ${P}/ HTTP/1.0\r\n\r\n`, { waitForClose: true });
          assert.equal(header(old.responses[0]!, 'transfer-encoding'), undefined);
          assert.equal(old.closed, true);
          assert.equal(old.responses[0]!.body.toString(), 'hello');
        });
      });

      it('51. more bytes than Content-Length: exactly CL sent, iteration stopped, connection reusable', async () => {
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
          const r = await rawRequest(port, get('/') + get('/'), { methods: ['GET', 'GET'] });
          assert.equal(r.responses.length, 2);
          assert.equal(r.responses[0]!.body.toString(), 'hello');
          assert.equal(r.responses[1]!.body.toString(), 'hello');
          assert.equal(pulled, 4, 'two chunks per response, then iteration stops');
          assert.equal(closed, 2);
        });
      });

      it('52. fewer bytes than Content-Length: the connection is closed after them and it is logged', async () => {
        const app: App = (_e, sr) => {
          sr('200 OK', [
            ['Content-Type', 'text/plain'],
            ['Content-Length', '10'],
          ]);
          return [b('hel'), b('lo')];
        };
        await withServer(app, async (port, log) => {
          const r = await rawRequest(port, get('/') + get('/'), {
            methods: ['GET', 'GET'],
            waitForClose: true,
            timeout: 2000,
          });
          assert.equal(r.closed, true);
          assert.equal(r.truncated, true);
          assert.ok(r.text.endsWith('hello'));
          assert.match(log.text, /too few bytes \(5\).*\(10\)/);
        });
      });

      it('53. HEAD sends no body and keeps the app Content-Length; 204 and 304 send no body', async () => {
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
          const r = await rawRequest(
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

      it('54. chunks are not delayed; a client that never reads does not make the server buffer', async () => {
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
      });

      it('55. a client disconnect mid-stream stops iteration, runs return() and close() once, aborts the signal', async () => {
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
      });

      it('56. close() is called exactly once on every path; async close is awaited; a throwing close is logged', async () => {
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
              await rawRequest(port, get(p), { timeout: 2000 });
            }
            await rawRequest(port, `HEAD ${P}/head HTTP/1.1\r\nHost: h\r\n\r\n`, { methods: ['HEAD'] });
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
            const r = await rawRequest(port, get('/ok'));
            assert.equal(r.responses[0]!.status, 200, 'the server keeps serving');
          },
          { onResponse: (rec) => records.push(rec.status) },
        );
        assert.ok(records.length >= 8);
      });

      it('57. two Set-Cookie headers stay separate; Date is added once', async () => {
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
          const r = await rawRequest(port, get('/') + get('/dated'), { methods: ['GET', 'GET'] });
          assert.deepEqual(headerAll(r.responses[0]!, 'set-cookie'), ['a=1', 'b=2']);
          assert.equal(headerAll(r.responses[0]!, 'date').length, 1);
          assert.deepEqual(headerAll(r.responses[1]!, 'date'), ['Tue, 01 Jan 2030 00:00:00 GMT']);
        });
      });

      it('58. wsgi.file_wrapper reads from the current position, honours Content-Length and closes the file', async () => {
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
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.body.toString(), '456789');
          await sleep(20);
          assert.equal(fileClosed, 1);
        });
      });

      it('59. wsgi.errors takes any Unicode and has flush() and writelines()', async () => {
        const app: App = (environ, sr) => {
          const errors = environ['wsgi.errors'];
          errors.write('ünïcødé ☃\n');
          errors.writelines(['a\n', 'b\n']);
          errors.flush();
          ok(sr);
          return [b('ok')];
        };
        await withServer(app, async (port, log) => {
          const r = await rawRequest(port, get('/'));
          assert.equal(r.responses[0]!.status, 200);
          assert.match(log.text, /ünïcødé ☃\na\nb\n/);
        });
      });

      it('the server keeps serving after every kind of app failure (supertest)', async () => {
        const app: App = (environ, sr) => {
          if (environ.PATH_INFO === '/throw') throw new Error('sync throw');
          if (environ.PATH_INFO === '/reject') return Promise.reject(new Error('async reject'));
          ok(sr);
          return [b('alive')];
        };
        await withServer(app, async (port) => {
          const agent = request(`http://127.0.0.1:${port}`);
          await agent.get(`${P}/throw`).expect(500);
          await agent.get(`${P}/reject`).expect(500);
          await agent.get(`${P}/`).expect(200, 'alive');
        });
      });
    });
  });
}
