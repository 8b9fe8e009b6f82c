/** Conformance cases: start_response (SPEC §6). */

import assert from 'node:assert/strict';
import type { App, Bytes, ResponseHeaders, StartResponse } from '../../src/types.js';
import { connect, deferred, header, readUntil } from '../helpers/raw-http.js';
import { b, type SuiteContext } from './context.js';

/** The cases of start_response (SPEC §6). */
export function startResponseCases(c: SuiteContext): void {
  const { it, withServer, get, send } = c;
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
      await send(port, get('/'));
    });
    return result;
  }

  it(
    'start-response.status',
    'status strings: valid ones accepted, malformed ones thrown, uncaught gives 500',
    async () => {
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
        const r = await send(port, get('/'));
        assert.equal(r.responses[0]!.status, 500);
        assert.match(log.text, /invalid status/);
      });
    },
  );

  it(
    'start-response.header-types',
    'headers must be an array of [string, string] pairs with native values',
    async () => {
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
    },
  );

  it('start-response.crlf-in-value', 'CR/LF in a header value is refused and never reaches the wire', async () => {
    const app: App = (_e, sr) => {
      sr('200 OK', [['X-A', 'a\r\nSet-Cookie: x=1']]);
      return [b('body')];
    };
    await withServer(app, async (port) => {
      const r = await send(port, get('/'));
      assert.equal(r.responses[0]!.status, 500);
      assert.ok(!/set-cookie/i.test(r.text));
    });
  });

  it('start-response.header-names', 'invalid header names', async () => {
    for (const n of ['X Foo', 'X:Foo', '', 'Status', 'X-\u00e9']) {
      assert.match(await attempt((sr) => sr('200 OK', [[n, 'v']])), /^threw:ERR_NSGI_/, n);
    }
  });

  it('start-response.hop-by-hop', 'hop-by-hop headers, in any case', async () => {
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

  it('start-response.twice', 'a second call without excInfo throws, also after a first call that threw', async () => {
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

  it('start-response.exc-info-before-body', 'excInfo before any body replaces the status and headers', async () => {
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
      const r = await send(port, get('/'));
      const res = r.responses[0]!;
      assert.equal(res.status, 500);
      assert.equal(res.reason, c.reason('Oops'));
      assert.equal(header(res, 'x-second'), '2');
      assert.equal(header(res, 'x-first'), undefined);
      assert.equal(res.body.toString(), 'sorry');
    });
  });

  it(
    'start-response.exc-info-after-head',
    'excInfo after headers were sent re-throws that very error and the response is aborted',
    async () => {
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
        const r = await send(port, get('/'), { waitForClose: true, timeout: 2000 });
        assert.equal(rethrown, original);
        assert.equal(c.cutShort(r), true, 'the response is dropped');
        assert.equal(r.responses[0]!.status, 200);
        assert.equal(r.responses[0]!.chunked, false, 'no chunked terminator after an abort');
        assert.ok(r.text.includes('part one'));
        assert.equal(closed, 1);
        assert.match(log.text, /late failure/);
      });
    },
  );

  it(
    'start-response.throw-before-first-chunk',
    'a throw after start_response but before the first chunk gives 500, never the stored 200',
    async () => {
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
        const r = await send(port, get('/'));
        assert.equal(r.responses[0]!.status, 500);
        assert.equal(header(r.responses[0]!, 'x-leak'), undefined);
      });
    },
  );

  it(
    'start-response.write',
    'write(): sends at once, rejects strings, and nothing is sent without a valid start_response',
    async () => {
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
        const r = await send(port, get('/'));
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
        const r = await send(port, get('/'));
        assert.equal(r.responses[0]!.status, 500);
      });
      assert.equal(writeError, 'ERR_NSGI_START_RESPONSE_FAILED');
    },
  );
}
