/** Conformance cases: wsgi.input (SPEC §7). */

import assert from 'node:assert/strict';
import { ClientDisconnectedError } from '../../src/errors.js';
import type { App, Bytes, Environ } from '../../src/types.js';
import { connect, deferred, readUntil, sleep } from '../helpers/raw-http.js';
import { b, type SuiteContext } from './context.js';

/** The cases of wsgi.input (SPEC §7). */
export function inputCases(c: SuiteContext): void {
  const { P, it, withServer, get, send } = c;
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

  it('input.read', 'read() returns the body then empty bytes; read(n) returns exactly n', async () => {
    const { app } = reading(async (input) => [s(await input.read()), (await input.read()).length]);
    await withServer(app, async (port) => {
      const r = await send(port, post('hello world'));
      assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['hello world', 0]);
    });
    const five = reading(async (input) => [s(await input.read(5)), s(await input.read(100)), s(await input.read(1))]);
    await withServer(five.app, async (port) => {
      const r = await send(port, post('hello world'));
      assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['hello', ' world', '']);
    });
  });

  it(
    'input.eof-before-next-request',
    'EOF comes at the end of the body, never inside the next pipelined request',
    async () => {
      const { app } = reading(async (input) => [s(await input.read(100)), s(await input.read(100))]);
      await withServer(app, async (port) => {
        const r = await send(port, post('12345') + post('abc'), { methods: ['POST', 'POST'] });
        assert.equal(r.responses.length, 2);
        assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['12345', '']);
        assert.deepEqual(JSON.parse(r.responses[1]!.body.toString()), ['abc', '']);
      });
    },
  );

  it('input.pipelined-twenty', 'twenty pipelined requests on one connection are answered in order', async () => {
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
      const r = await send(port, reqs.join(''), { methods, timeout: 4000 });
      assert.equal(r.responses.length, 20);
      r.responses.forEach((res, i) => {
        assert.equal(res.status, 200);
        const expected = methods[i] === 'HEAD' ? '' : `${i}:${i % 2 ? `b${i % 10}` : ''}`;
        assert.equal(res.body.toString(), expected, `response ${i}`);
      });
      assert.equal(r.closed, false);
    });
  });

  it('input.no-body', 'a request without a body reads as empty at once', async () => {
    const { app } = reading(async (input) => (await input.read()).length);
    await withServer(app, async (port) => {
      const r = await send(port, get('/'));
      assert.equal(r.responses[0]!.body.toString(), '0');
    });
  });

  it('input.readline', 'readline, readline(size), readlines and async iteration', async () => {
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
      const r = await send(port, post('a\nbb\nccc'));
      assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['a\n', 'bb', '\n', 'ccc', '']);
    });
    const lines = reading(async (input) => (await input.readlines()).map(s));
    await withServer(lines.app, async (port) => {
      const r = await send(port, post('a\nbb\nccc'));
      assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['a\n', 'bb\n', 'ccc']);
    });
    const iter = reading(async (input) => {
      const out: string[] = [];
      for await (const line of input) out.push(s(line));
      return out;
    });
    await withServer(iter.app, async (port) => {
      const r = await send(port, post('x\ny\n'));
      assert.deepEqual(JSON.parse(r.responses[0]!.body.toString()), ['x\n', 'y\n']);
    });
  });

  it('input.chunked', 'a chunked body is de-chunked; no TRANSFER_ENCODING or CONTENT_LENGTH key', async () => {
    const { app } = reading(async (input, environ) => ({
      body: s(await input.read()),
      terminated: environ['wsgi.input_terminated'],
      te: 'HTTP_TRANSFER_ENCODING' in environ,
      cl: environ.CONTENT_LENGTH ?? null,
    }));
    await withServer(app, async (port) => {
      const r = await send(
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

  it(
    'input.body-cut-short',
    'a body cut short by the client rejects read(), aborts nsgi.signal and still closes',
    async () => {
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
    },
  );

  it(
    'input.expect-continue',
    'Expect: 100-continue is answered on the first read, and never when the app answers first',
    async () => {
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
        const r = await send(
          port,
          `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n`,
          { waitForClose: true, timeout: 2000 },
        );
        assert.ok(!r.text.includes('100 Continue'), r.text);
        assert.equal(r.responses[0]!.status, 413);
        assert.equal(r.closed, true, 'unread body that large must close the connection');
        // Even a small announced body: the client may still send it after the answer, where it
        // would be read as the next request.
        const small = await send(
          port,
          `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
          { waitForClose: true, timeout: 2000 },
        );
        assert.ok(!small.text.includes('100 Continue'), small.text);
        assert.equal(small.responses[0]!.status, 413);
        assert.equal(small.closed, true, 'a body never asked for closes the connection');
      });
    },
  );

  it(
    'input.body-limit',
    'a body over the limit is refused with 413 (declared: before the app; chunked: on read)',
    async () => {
      let called = 0;
      const { app } = reading(async (input) => {
        called++;
        return s(await input.read());
      });
      await withServer(
        app,
        async (port) => {
          const r = await send(port, post('x'.repeat(11)), { waitForClose: true, timeout: 2000 });
          assert.equal(r.responses[0]!.status, 413);
          assert.equal(called, 0);
          const c = await send(
            port,
            `POST ${P}/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n`,
            { waitForClose: true, timeout: 2000 },
          );
          assert.equal(c.responses[0]!.status, 413);
          assert.equal(called, 1);
          const ok = await send(port, post('x'.repeat(10)));
          assert.equal(ok.responses[0]!.status, 200);
        },
        { maxBodySize: 10 },
      );
    },
  );

  it('input.unread-body', 'an unread body does not corrupt the next request on the connection', async () => {
    const app: App = (environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [b(environ.PATH_INFO)];
    };
    await withServer(app, async (port) => {
      const big = 'x'.repeat(1024 * 1024);
      const r = await send(
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
}
