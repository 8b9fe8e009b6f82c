/** Conformance cases: requests refused before the app runs (SPEC §11). */

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { App } from '../../src/types.js';
import { b, type SuiteContext } from './context.js';

/**
 * How node:http2 refuses a stream it finds malformed before the app could see it: PROTOCOL_ERROR
 * (RFC 9113 §8.1.1), REFUSED_STREAM for a header list over its limit, ENHANCE_YOUR_CALM.
 */
const H2_REFUSALS: number[] = [
  http2.constants.NGHTTP2_PROTOCOL_ERROR,
  http2.constants.NGHTTP2_REFUSED_STREAM,
  http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
];

/** The cases of requests refused before the app runs (SPEC §11). */
export function refusalCases(c: SuiteContext): void {
  const { P, it, withServer, send } = c;
  let calls = 0;
  const app: App = (_e, startResponse) => {
    calls++;
    startResponse('200 OK', [['Content-Type', 'text/plain']]);
    return [b('ok')];
  };
  async function refused(reqText: string | Buffer, statuses: number[], mustClose = true): Promise<void> {
    const before = calls;
    await withServer(app, async (port) => {
      if (c.h2) {
        // HTTP/2 refuses a stream, never the connection (SPEC §17.2): the answer, or a stream
        // nghttp2 already found malformed reset with PROTOCOL_ERROR (RFC 9113 §8.1.1).
        const r = await send(port, reqText, { timeout: 2000 });
        if (r.responses.length === 0) {
          assert.equal(r.resetCodes?.length, 1);
          assert.ok(H2_REFUSALS.includes(r.resetCodes[0]!), `reset with ${r.resetCodes[0]}`);
        } else {
          assert.equal(r.responses.length, 1, r.text);
          assert.ok(statuses.includes(r.responses[0]!.status), `got ${r.responses[0]!.status}`);
        }
        return;
      }
      const r = await send(port, reqText, { waitForClose: mustClose, timeout: 2000 });
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

  it('refuse.length-and-chunked', 'Content-Length with Transfer-Encoding', async () => {
    await refused(
      `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      [400],
    );
  });
  it('refuse.content-length', 'invalid Content-Length values and duplicates', async () => {
    for (const v of ['1x', '-1', '+5', '1 2', '0x10', '5,5']) {
      await refused(`POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: ${v}\r\n\r\nhello`, [400]);
    }
    // Node's HTTP/2 client will not send a field that must be single twice.
    if (!c.h2)
      await refused(`POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, [400]);
  });
  it('refuse.host-and-content-type', 'missing or duplicate Host, duplicate Content-Type', async () => {
    // Node's HTTP/2 client always sends :authority; h2.test.ts sends a stream with neither.
    if (!c.h2) await refused(`GET ${P}/ HTTP/1.1\r\n\r\n`, [400]);
    await refused(`GET ${P}/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, [400]);
    if (!c.h2)
      await refused(`GET ${P}/ HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n`, [400], false);
  });
  it(
    'refuse.invalid-host',
    'a Host that is not host[:port]: userinfo, a path, a list, whitespace, a bad port',
    async () => {
      for (const host of ['user@h', 'h/p', 'a,b', 'a, b', 'a b', 'h:8x', '[::1']) {
        await refused(`GET ${P}/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`, [400]);
      }
      await refused(`GET http://user@h${P}/ HTTP/1.1\r\nHost: h\r\n\r\n`, [400]);
    },
  );
  it('refuse.transfer-encoding', 'unsupported or malformed Transfer-Encoding', async () => {
    for (const te of ['gzip, chunked', 'chunked, chunked', 'identity', '\x0bchunked']) {
      await refused(`POST ${P}/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`, [400, 501]);
    }
    await refused(`POST ${P}/ HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, [400, 501]);
  });
  it('refuse.header-syntax', 'obs-fold, whitespace before the colon, NUL and bare CR in headers', async () => {
    await refused(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n`, [400]);
    await refused(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-A : a\r\n\r\n`, [400]);
    await refused(b(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n`), [400]);
    await refused(b(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n`), [400]);
  });
  it('refuse.bare-cr-at-once', 'a bare CR with no LF after it is refused at once, not after a timeout', async () => {
    for (const head of [`GET ${P}/ HTTP/1.1\rHost: h\r\r`, `GET ${P}/ HTTP/1.1\r\nHost: h\rX: y\r\r`]) {
      const started = Date.now();
      await refused(b(head), [400]);
      assert.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
    }
  });
  it(
    'refuse.limits',
    'request-target too long (414), header section too large (431), bad chunk size (400)',
    async () => {
      await refused(`GET ${P}/${'a'.repeat(9000)} HTTP/1.1\r\nHost: h\r\n\r\n`, [414], false);
      await refused(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(70000)}\r\n\r\n`, [431]);
    },
  );
  it(
    'refuse.bad-chunk-size',
    'a malformed chunk size fails the body read: 400 or a closed connection, never a hang',
    async () => {
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
        const r = await send(
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
    },
  );
  it('refuse.expectation', 'an unknown expectation gets 417', async () => {
    await refused(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n`, [417], false);
  });
}
