/** Conformance cases: the environ (SPEC §5). */

import assert from 'node:assert/strict';
import { decodeNative } from '../../src/native.js';
import type { App, Environ } from '../../src/types.js';
import { b, type SuiteContext } from './context.js';

/** The cases of the environ (SPEC §5). */
export function environCases(c: SuiteContext): void {
  const { P, it, withServer, probe, environFor, get, send, name } = c;
  it('environ.request-line', 'maps the request line and the wsgi keys', async () => {
    const e = await environFor(get('/x?y=1'));
    assert.equal(e.REQUEST_METHOD, 'GET');
    assert.equal(e.SCRIPT_NAME, P);
    assert.equal(e.PATH_INFO, '/x');
    assert.equal(e.QUERY_STRING, 'y=1');
    assert.equal(e.SERVER_PROTOCOL, c.version);
    assert.equal(e.REQUEST_URI, `${P}/x?y=1`);
    assert.deepEqual([...e['wsgi.version']], [1, 0]);
    assert.equal(e['wsgi.url_scheme'], c.scheme());
    assert.equal(e['wsgi.multithread'], false);
    assert.equal(e['wsgi.multiprocess'], false);
    assert.equal(e['wsgi.run_once'], false);
    assert.equal(e['wsgi.input_terminated'], true);
    assert.equal(typeof e['wsgi.file_wrapper'], 'function');
    assert.ok(e['nsgi.signal'] instanceof AbortSignal);
    assert.equal(e['nsgi.signal'].aborted, false);
    assert.equal(Object.getPrototypeOf(e), Object.prototype);
  });

  it('environ.root-path', 'root path gives PATH_INFO "/" and an empty QUERY_STRING that is present', async () => {
    const e = await environFor(get('/'));
    assert.equal(e.SCRIPT_NAME, P);
    assert.equal(e.PATH_INFO, '/');
    assert.ok('QUERY_STRING' in e);
    assert.equal(e.QUERY_STRING, '');
    assert.notEqual(e.SCRIPT_NAME, '/');
  });

  if (P !== '') {
    it(
      'environ.mount-boundaries',
      'mount boundaries: prefix, prefix/, prefix/x/y, and a longer segment not dispatched',
      async () => {
        const { app, seen } = probe();
        await withServer(app, async (port) => {
          for (const path of [P, `${P}/`, `${P}/x/y`]) {
            const r = await send(port, `GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`);
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
          const r = await send(port, `GET ${P}ple HTTP/1.1\r\nHost: h\r\n\r\n`);
          assert.equal(r.responses[0]!.status, 404);
          assert.equal(seen.length, 3, 'the app must not see a path outside its mount');
        });
      },
    );
  }

  it('environ.path-decoding', 'PATH_INFO is percent-decoded to latin-1 bytes (UTF-8 arrives as mojibake)', async () => {
    const e = await environFor(get('/caf%C3%A9'));
    assert.equal(e.PATH_INFO, '/caf\u00C3\u00A9');
    assert.equal(decodeNative(e.PATH_INFO), '/café');
  });

  it('environ.lossless-decoding', 'decoding is lossless: %FF%00, %2F, + and malformed escapes', async () => {
    assert.equal((await environFor(get('/%FF%00x'))).PATH_INFO, '/\u00FF\u0000x');
    const slash = await environFor(get('/a%2Fb'));
    assert.equal(slash.PATH_INFO, '/a/b');
    assert.equal(slash.REQUEST_URI, `${P}/a%2Fb`);
    assert.equal((await environFor(get('/a+b'))).PATH_INFO, '/a+b');
    assert.equal((await environFor(get('/%zz'))).PATH_INFO, '/%zz');
  });

  it('environ.raw-query', 'QUERY_STRING is raw, byte for byte', async () => {
    assert.equal((await environFor(get('/q?q=a+b%20c&x=%E2%82%AC'))).QUERY_STRING, 'q=a+b%20c&x=%E2%82%AC');
    // A raw byte >= 0x80 is outside the request-target grammar (RFC 9112 §3.2): a host may refuse
    // it with 400 (Node's parser does); one that accepts it must map it byte for byte.
    const { app, seen } = probe();
    await withServer(app, async (port) => {
      const r = await send(port, get('/q?x=\u00e9'));
      if (r.responses[0]!.status === 400) assert.equal(seen.length, 0);
      else assert.equal(seen[0]!.QUERY_STRING, 'x=\u00e9');
    });
  });

  it('environ.fragment', 'a fragment is removed from PATH_INFO and QUERY_STRING, kept in REQUEST_URI', async () => {
    const e = await environFor(get('/p?q#frag'));
    assert.equal(e.PATH_INFO, '/p');
    assert.equal(e.QUERY_STRING, 'q');
    assert.equal(e.REQUEST_URI, `${P}/p?q#frag`);
  });

  it(
    'environ.content-keys',
    'Content-Type and Content-Length become CONTENT_TYPE/CONTENT_LENGTH, never HTTP_*',
    async () => {
      const e = await environFor(
        `POST ${P}/ HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello`,
      );
      assert.equal(e.CONTENT_TYPE, 'text/plain');
      assert.equal(e.CONTENT_LENGTH, '5');
      assert.ok(!('HTTP_CONTENT_TYPE' in e));
      assert.ok(!('HTTP_CONTENT_LENGTH' in e));
    },
  );

  it('environ.no-content-keys', 'no Content-Type or Content-Length header: no key', async () => {
    const e = await environFor(get('/'));
    assert.ok(!('CONTENT_TYPE' in e));
    assert.ok(!('CONTENT_LENGTH' in e) || e.CONTENT_LENGTH === '');
  });

  it('environ.header-names', 'header names map to HTTP_*, case-insensitively, with OWS trimmed', async () => {
    const e = await environFor(get('/', 'X-Custom-Thing:   v \r\nx-other-thing: w\r\n'));
    assert.equal(e.HTTP_X_CUSTOM_THING, 'v');
    assert.equal(e.HTTP_X_OTHER_THING, 'w');
    assert.equal(e.HTTP_HOST, 'test.local');
  });

  it(
    'environ.repeated-headers',
    'duplicates are joined with ", " in order; Cookie with "; "; raw pairs keep them all',
    async () => {
      const e = await environFor(get('/', 'Accept: a\r\nCookie: a=1\r\nAccept: b\r\nCookie: b=2\r\n'));
      assert.equal(e.HTTP_ACCEPT, 'a, b');
      assert.equal(e.HTTP_COOKIE, 'a=1; b=2');
      const expected = [
        ['Accept', 'a'],
        ['Cookie', 'a=1'],
        ['Accept', 'b'],
        ['Cookie', 'b=2'],
      ].map(([n, v]) => [name(n!), v!]);
      const pairs = e['nsgi.raw_headers'].filter(([n]) => n !== name('Host')).map(([n, v]) => [n, v]);
      // The HTTP/2 client sends a name's fields together: there the order within each name counts.
      const order = (list: string[][]) =>
        c.h2 ? [...list].sort((x, y) => (x[0]! < y[0]! ? -1 : x[0]! > y[0]! ? 1 : 0)) : list;
      assert.deepEqual(order(pairs), order(expected));
    },
  );

  it('environ.underscore-headers', 'header names with "_" are dropped, so they cannot spoof dashed ones', async () => {
    const e = await environFor(get('/', 'X_Auth_User: evil\r\nX-Auth-User: ok\r\n'));
    assert.equal(e.HTTP_X_AUTH_USER, 'ok');
    const lone = await environFor(get('/', 'X_Auth_User: evil\r\n'));
    assert.ok(!('HTTP_X_AUTH_USER' in lone));
    assert.ok(
      lone['nsgi.raw_headers'].some(([n]) => n === name('X_Auth_User')),
      'raw headers keep what was received',
    );
  });

  it('environ.obs-text', 'obs-text bytes in a header value arrive as the same latin-1 code points', async () => {
    const e = await environFor(
      Buffer.concat([
        b(`GET ${P}/ HTTP/1.1\r\nHost: h\r\nX-Bytes: `),
        Buffer.from([0x80, 0xe9, 0xff]),
        b('\r\n\r\n'),
      ]).toString('latin1'),
    );
    assert.equal(e.HTTP_X_BYTES, '\u0080\u00e9\u00ff');
  });

  it('environ.native-strings', 'every CGI value is a native string', async () => {
    const { app, seen } = probe();
    await withServer(app, async (port) => {
      const reqs = [
        get('/a%C3%A9?x=%FF', 'X-A: \u00e9\u00ff\r\n'),
        `POST ${P}/p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Type: a/b\r\n\r\nhi`,
        `DELETE ${P}/%F0%9F%98%80 HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: b=\u00e9\r\n\r\n`,
        `OPTIONS ${P}/ HTTP/1.0\r\nHost: h\r\n\r\n`,
      ];
      for (const r of reqs) await send(port, b(r));
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

  it('environ.server-name-port', 'SERVER_NAME and SERVER_PORT are set; the port is digits', async () => {
    const e = await environFor(get('/'));
    assert.ok(e.SERVER_NAME.length > 0);
    assert.match(e.SERVER_PORT, /^\d+$/);
    assert.equal(e.REMOTE_ADDR, '127.0.0.1');
    assert.match(e.REMOTE_PORT ?? '', /^\d+$/);
  });

  it('environ.forwarded', 'X-Forwarded-* are not trusted by default, and are with a trusted proxy', async () => {
    const fwd = 'X-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9\r\n';
    const untrusted = await environFor(get('/', fwd));
    assert.equal(untrusted['wsgi.url_scheme'], c.scheme());
    assert.equal(untrusted.REMOTE_ADDR, '127.0.0.1');
    assert.equal(untrusted.HTTP_X_FORWARDED_FOR, '203.0.113.9');
    const trusted = await environFor(get('/', fwd), { trustProxy: 'loopback' });
    assert.equal(trusted['wsgi.url_scheme'], 'https');
    assert.equal(trusted.HTTPS, 'on');
    assert.equal(trusted.REMOTE_ADDR, '203.0.113.9');
  });

  it('environ.no-process-env', 'process environment variables never leak into environ', async () => {
    process.env.HTTP_PROXY = 'http://evil.example';
    try {
      const e = await environFor(get('/'));
      assert.ok(!('HTTP_PROXY' in e));
    } finally {
      delete process.env.HTTP_PROXY;
    }
  });

  it('environ.fresh-per-request', 'each request gets a fresh environ, even on one keep-alive connection', async () => {
    const seen: Environ[] = [];
    const app: App = (environ, startResponse) => {
      seen.push(environ);
      const leaked = 'x.added' in environ;
      environ['x.added'] = true;
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [b(leaked ? 'leaked' : 'fresh')];
    };
    await withServer(app, async (port) => {
      const r = await send(port, get('/1') + get('/2'), { methods: ['GET', 'GET'] });
      assert.deepEqual(
        r.responses.map((x) => x.body.toString()),
        ['fresh', 'fresh'],
      );
      assert.notEqual(seen[0], seen[1]);
    });
  });
}
