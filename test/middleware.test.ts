/**
 * The middleware library on every host, each middleware between two validate layers: the outer one
 * checks what the middleware hands the server, the inner one what it does to the app it wraps
 * (including block boundaries). No lint error may come from our own code.
 */

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { describe, it } from 'node:test';
import http from 'node:http';
import request from 'supertest';
import {
  accessLog,
  compose,
  compress,
  errors,
  ipFilter,
  proxyFix,
  router,
  staticFiles,
  validate,
  type LintError,
  type RouteMatch,
} from '../src/middleware/index.js';
import type { App, Bytes, Environ } from '../src/types.js';
import { HOSTS } from './helpers/hosts.js';
import { sleep } from './helpers/raw-http.js';

const STATIC = fileURLToPath(new URL('./fixtures/static/', import.meta.url));
const b = (s: string) => Buffer.from(s);

/** GETs `path` with `headers` and returns the status, headers and undecoded body bytes. */
async function rawGet(
  server: http.Server,
  path: string,
  headers: Record<string, string>,
): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await new Promise((resolve, reject) => {
      http
        .get(
          { host: '127.0.0.1', port: (server.address() as { port: number }).port, path, headers, agent: false },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts) }));
          },
        )
        .on('error', reject);
    });
  } finally {
    server.close();
  }
}

/** `wrap(app)` between two validate layers, collecting every violation. */
function checked(wrap: (app: App) => App, app: App): { app: App; found: string[] } {
  const found: string[] = [];
  const hook = { onViolation: (e: LintError) => void found.push(e.message) };
  return { app: validate(wrap(validate(app, hook)), hook), found };
}

async function clean(found: string[]): Promise<void> {
  await sleep(20);
  assert.deepEqual(found, [], 'no lint error');
}

const text =
  (body: string, type = 'text/plain; charset=utf-8'): App =>
  (_e, sr) => {
    sr('200 OK', [['Content-Type', type]]);
    return [b(body)];
  };

const json: App = (environ, sr) => {
  sr('200 OK', [['Content-Type', 'application/json']]);
  return [
    b(
      JSON.stringify({
        route: environ['nsgi.route'] ?? null,
        addr: environ.REMOTE_ADDR,
        scheme: environ['wsgi.url_scheme'],
        host: environ.HTTP_HOST ?? null,
        script: environ.SCRIPT_NAME,
        original: environ['nsgi.proxy_original'] ?? null,
      }),
    ),
  ];
};

for (const { name, server } of HOSTS) {
  describe(`middleware on ${name}`, () => {
    it('router: parameters, a rest segment, 404, 405 with Allow, HEAD by the GET route', async () => {
      const { app, found } = checked(
        (inner) => router({ 'GET /users/:id': inner, 'POST /users': inner, '/files/*': inner, 'GET /lazy': lazy }),
        json,
      );
      function lazy(_e: Environ, sr: Parameters<App>[1]) {
        // Starts the response in its first iteration, as class-form apps do.
        return (function* () {
          sr('200 OK', [
            ['Content-Type', 'text/plain'],
            ['Content-Length', '4'],
          ]);
          yield b('lazy');
        })();
      }
      const s = server(app);
      const user = await request(s).get('/users/42').expect(200);
      assert.deepEqual((user.body as { route: RouteMatch }).route, { route: 'GET /users/:id', params: { id: '42' } });
      const files = await request(s).put('/files/a/b.txt').expect(200);
      assert.deepEqual((files.body as { route: RouteMatch }).route.params, { '*': 'a/b.txt' });
      await request(s).get('/nothing').expect(404);
      const notAllowed = await request(s).delete('/users').expect(405);
      assert.equal(notAllowed.headers.allow, 'POST');
      assert.equal((await request(s).delete('/users/1').expect(405)).headers.allow, 'GET, HEAD');
      const head = await request(s).head('/users/7').expect(200);
      assert.equal(head.text, undefined);
      const lazyHead = await request(s).head('/lazy').expect(200);
      assert.equal(lazyHead.headers['content-length'], '4');
      assert.equal((await request(s).get('/lazy').expect(200)).text, 'lazy');
      await clean(found);
    });

    it('ipFilter: allow and deny lists on REMOTE_ADDR', async () => {
      const allowed = checked((inner) => ipFilter(inner, { allow: ['127.0.0.0/8', '::1'] }), text('in'));
      await request(server(allowed.app)).get('/').expect(200, 'in');
      const denied = checked((inner) => ipFilter(inner, { allow: ['10.0.0.0/8'] }), text('in'));
      await request(server(denied.app)).get('/').expect(403, 'Forbidden\n');
      const blocked = checked((inner) => ipFilter(inner, { deny: ['127.0.0.1', '::1'] }), text('in'));
      await request(server(blocked.app)).get('/').expect(403);
      await clean([...allowed.found, ...denied.found, ...blocked.found]);
    });

    it('proxyFix: trusted proxies rewrite REMOTE_ADDR, scheme, host and prefix; the originals are kept', async () => {
      const { app, found } = checked((inner) => proxyFix(inner, { trust: 'loopback' }), json);
      const res = await request(server(app))
        .get('/x')
        .set('X-Forwarded-For', '203.0.113.5')
        .set('X-Forwarded-Proto', 'https')
        .set('X-Forwarded-Host', 'example.com')
        .set('X-Forwarded-Prefix', '/app')
        .expect(200);
      const seen = res.body as {
        addr: string;
        scheme: string;
        host: string;
        script: string;
        original: { REMOTE_ADDR: string; 'wsgi.url_scheme': string };
      };
      assert.equal(seen.addr, '203.0.113.5');
      assert.equal(seen.scheme, 'https');
      assert.equal(seen.host, 'example.com');
      assert.equal(seen.script, '/app');
      assert.equal(seen.original.REMOTE_ADDR, '127.0.0.1');
      assert.equal(seen.original['wsgi.url_scheme'], 'http');
      const untrusted = checked((inner) => proxyFix(inner, { trust: ['10.0.0.1'] }), json);
      const plain = await request(server(untrusted.app)).get('/x').set('X-Forwarded-For', '203.0.113.5').expect(200);
      assert.equal((plain.body as { addr: string }).addr, '127.0.0.1');
      await clean([...found, ...untrusted.found]);
    });

    it('errors: a generic 500 before the response starts, the stack with debug, an abort after', async () => {
      const logged: string[] = [];
      const failing: App = () => {
        throw new Error('kaput <b>');
      };
      const quiet = checked((inner) => errors(inner), failing);
      const res = await request(server(quiet.app)).get('/').expect(500);
      assert.equal(res.text, 'Internal Server Error\n');
      const debug = checked((inner) => errors(inner, { debug: true }), failing);
      const html = await request(server(debug.app)).get('/').set('Accept', 'text/html').expect(500);
      assert.match(html.text, /<pre>Error: kaput &#60;b&#62;/);
      const txt = await request(server(debug.app)).get('/').expect(500);
      assert.match(txt.text, /Error: kaput <b>\n\s+at /);
      const late: App = (environ, sr) => {
        environ['wsgi.errors'] = { write: (s: string) => void logged.push(s), writelines() {}, flush() {} };
        sr('200 OK', [['Content-Type', 'text/plain']]);
        return (function* () {
          yield b('partial');
          throw new Error('mid-body');
        })();
      };
      const after = checked((inner) => errors(inner), late);
      await assert.rejects(request(server(after.app)).get('/'), 'the response is cut off, not completed');
      await clean([...quiet.found, ...debug.found, ...after.found.filter((m) => !/mid-body/.test(m))]);
    });

    it('accessLog: a Common and a Combined Log Format line per request, written when the body closes', async () => {
      const lines: string[] = [];
      const stream = { write: (l: string) => void lines.push(l) };
      const common = checked((inner) => accessLog(inner, { stream }), text('hello'));
      await request(server(common.app)).get('/path?q=1').expect(200);
      await sleep(20);
      assert.match(
        lines[0]!,
        /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/path\?q=1 HTTP\/1\.1" 200 5 [\d.]+ms\n$/,
      );
      const combined = checked((inner) => accessLog(inner, { stream, format: 'combined' }), text('hello'));
      await request(server(combined.app))
        .get('/')
        .set('Referer', 'http://r/')
        .set('User-Agent', 'agent "x"')
        .expect(200);
      await sleep(20);
      assert.match(lines[1]!, /" 200 5 "http:\/\/r\/" "agent \\x22x\\x22" [\d.]+ms\n$/);
      await clean([...common.found, ...combined.found]);
    });

    it('staticFiles: types, validators, 304, ranges, index, HEAD, and no way out of the root', async () => {
      const { app, found } = checked((inner) => staticFiles(STATIC, { fallthrough: inner }), text('fallback'));
      const s = server(app);
      const hello = await request(s).get('/hello.txt').expect(200, 'hello static\n');
      assert.equal(hello.headers['content-type'], 'text/plain; charset=utf-8');
      assert.ok(hello.headers.etag && hello.headers['last-modified']);
      await request(s).get('/hello.txt').set('If-None-Match', hello.headers.etag).expect(304);
      const part = await request(s).get('/hello.txt').set('Range', 'bytes=0-4').expect(206, 'hello');
      assert.equal(part.headers['content-range'], 'bytes 0-4/13');
      const bad = await request(s).get('/hello.txt').set('Range', 'bytes=100-200').expect(416);
      assert.equal(bad.headers['content-range'], 'bytes */13');
      await request(s)
        .get('/')
        .expect(200, /index page/);
      await request(s).get('/sub/').expect(200, 'sub index\n');
      assert.equal(
        (await request(s).get('/data.json').expect(200)).headers['content-type'],
        'application/json; charset=utf-8',
      );
      const head = await request(s).head('/big.txt').expect(200);
      assert.equal(head.headers['content-length'], '5000');
      await request(s).get('/big.txt').expect(200, 'z'.repeat(5000));
      for (const path of [
        '/../package.json',
        '/%2e%2e/package.json',
        '/sub/..%2f..%2fpackage.json',
        '/outside-link',
        '/nope.txt',
      ]) {
        await request(s).get(path).expect(200, 'fallback');
      }
      await clean(found);
    });

    it('compress: gzip or brotli by Accept-Encoding, with Vary; small or incompressible bodies as they are', async () => {
      const big = 'compress me '.repeat(500);
      const gz = checked((inner) => compress(inner), text(big));
      const s = server(gz.app);
      const zipped = await rawGet(server(gz.app), '/', { 'Accept-Encoding': 'gzip' });
      assert.equal(zipped.headers['content-encoding'], 'gzip');
      assert.equal(zipped.headers.vary, 'Accept-Encoding');
      assert.equal(gunzipSync(zipped.body).toString(), big);
      const br = await rawGet(server(gz.app), '/', { 'Accept-Encoding': 'br, gzip' });
      assert.equal(br.headers['content-encoding'], 'br');
      assert.equal(brotliDecompressSync(br.body).toString(), big);
      const none = await request(s).get('/').set('Accept-Encoding', 'identity').expect(200);
      assert.equal(none.headers['content-encoding'], undefined);
      assert.equal(none.text, big);
      const small: App = (_e, sr) => {
        sr('200 OK', [
          ['Content-Type', 'text/plain'],
          ['Content-Length', '2'],
        ]);
        return [b('hi')];
      };
      const tiny = checked((inner) => compress(inner), small);
      assert.equal(
        (await request(server(tiny.app)).get('/').set('Accept-Encoding', 'gzip').expect(200, 'hi')).headers[
          'content-encoding'
        ],
        undefined,
      );
      const png = checked((inner) => compress(inner), text('x'.repeat(5000), 'image/png'));
      assert.equal(
        (await request(server(png.app)).get('/').set('Accept-Encoding', 'gzip').expect(200)).headers[
          'content-encoding'
        ],
        undefined,
      );
      await clean([...gz.found, ...tiny.found, ...png.found]);
    });
  });
}

describe('middleware: streaming and composition', () => {
  it('compress passes each chunk on as it comes: the first bytes arrive while the app is still producing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: App = (_e, sr) => {
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield b('first chunk '.repeat(200));
        await gate;
        yield b('second chunk');
      })();
    };
    const { app, found } = checked((inner) => compress(inner), slow);
    const s = HOSTS[0]!.server(app);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as { port: number }).port;
    const { connect } = await import('./helpers/raw-http.js');
    const sock = await connect(port);
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    sock.write('GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n');
    for (let i = 0; i < 100 && Buffer.concat(got).indexOf('\r\n\r\n') === -1; i++) await sleep(10);
    await sleep(50);
    const head = Buffer.concat(got).toString('latin1');
    assert.match(head, /Content-Encoding: gzip/i);
    const afterHead = Buffer.concat(got).length - (head.indexOf('\r\n\r\n') + 4);
    assert.ok(
      afterHead > 10,
      `compressed bytes of the first chunk arrive before the app finishes (${afterHead} bytes)`,
    );
    release();
    await sleep(50);
    sock.destroy();
    await new Promise<void>((r) => s.close(() => r()));
    await clean(found);
  });

  it('compose stacks middleware in reading order', async () => {
    const order: string[] = [];
    const tag =
      (name: string) =>
      (inner: App): App =>
      (environ, sr) => {
        order.push(name);
        return inner(environ, sr);
      };
    const app = compose(tag('a'), tag('b'), tag('c'))(text('x'));
    await request(HOSTS[0]!.server(app)).get('/').expect(200, 'x');
    assert.deepEqual(order, ['a', 'b', 'c']);
    assert.throws(() => compose(tag('a'), 'nope' as never), /argument 1 is string, not a function/);
  });

  it('refuses configurations that cannot work, naming the fix', () => {
    assert.throws(() => router({ 'GET users': json }), /must start with '\/'/);
    assert.throws(() => router({ 'G@T /x': json }), /is not a method/);
    assert.throws(() => ipFilter(json, { allow: ['10.0.0.0/40'] }), /not an IP address or CIDR range/);
    assert.throws(() => proxyFix(json, undefined as never), /give trust/);
    assert.throws(() => accessLog(json, { format: 'fancy' as never }), /'common' or 'combined'/);
    assert.throws(() => staticFiles(''), /give the directory/);
    assert.throws(() => staticFiles('./no/such/dir'), /is not a directory; give the directory to serve/);
    assert.throws(() => ipFilter(json, {}), /give an allow list, a deny list or both/);
    assert.throws(() => ipFilter(json, undefined as never), /give an allow list, a deny list or both/);
    assert.throws(() => compress(json, { gzipLevel: 12 }), /gzipLevel must be an integer from 1 to 9, got 12/);
    assert.throws(() => compress(json, { brotliQuality: -1 }), /brotliQuality must be an integer from 0 to 11/);
  });

  it('ipFilter compares IPv4-mapped IPv6 clients as IPv4, and IPv6 ranges', async () => {
    const env = (addr: string) => ({ REMOTE_ADDR: addr }) as unknown as Environ;
    const seen: string[] = [];
    const app = ipFilter(
      (_e, sr) => {
        seen.push('in');
        sr('200 OK', []);
        return [];
      },
      { allow: ['10.0.0.0/8', '2001:db8::/32'] },
    );
    const sr = () => async () => {};
    for (const addr of ['::ffff:10.1.2.3', '2001:db8::1', '192.168.0.1', 'not an address']) app(env(addr), sr);
    assert.equal(seen.length, 2);
  });

  it('proxyFix follows only trusted hops, and reads RFC 7239 Forwarded', () => {
    const run = (app: App, env: Record<string, string>) => {
      let seen!: Environ;
      app(
        { REMOTE_ADDR: '10.0.0.2', 'wsgi.url_scheme': 'http', SCRIPT_NAME: '', ...env } as unknown as Environ,
        () => async () => {},
      );
      return ((seen = captured!), seen);
    };
    let captured: Environ | undefined;
    const capture: App = (e) => {
      captured = e;
      return [];
    };
    const twoHops = proxyFix(capture, { trust: ['10.0.0.0/8'] });
    let e = run(twoHops, {
      HTTP_X_FORWARDED_FOR: '198.51.100.7, 203.0.113.9, 10.0.0.1',
      HTTP_X_FORWARDED_PROTO: 'https, http, http',
    });
    assert.equal(e.REMOTE_ADDR, '203.0.113.9', 'the first untrusted hop from the server is the client');
    assert.equal(e['wsgi.url_scheme'], 'http');
    const counted = proxyFix(capture, { trust: 1 });
    e = run(counted, { HTTP_X_FORWARDED_FOR: '198.51.100.7, 203.0.113.9' });
    assert.equal(e.REMOTE_ADDR, '203.0.113.9');
    const forwarded = proxyFix(capture, { trust: ['10.0.0.0/8'], forwarded: true });
    e = run(forwarded, { HTTP_FORWARDED: 'for="[2001:db8::7]:4711";proto=https;host=example.org' });
    assert.equal(e.REMOTE_ADDR, '2001:db8::7');
    assert.equal(e['wsgi.url_scheme'], 'https');
    assert.equal(e.HTTP_HOST, 'example.org');
  });
});

void (null as unknown as Bytes);
