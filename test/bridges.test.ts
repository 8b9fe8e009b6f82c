/** The bridges (nsgi/fetch, fromNodeListener): round trips keep what an app sees and sends; aborts end the body and close it once. */

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { serve as honoServe } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cache } from 'hono/cache';
import { methodOverride } from 'hono/method-override';
import compression from 'compression';
import cookieSession from 'cookie-session';
import express from 'express';
import onHeaders from 'on-headers';
import { fromFetchHandler, toFetchHandler } from '../adapters/fetch.js';
import { fromNodeListener, toNodeListener } from '../adapters/node.js';
import { mount } from '../src/middleware/index.js';
import { serve, type NsgiServer } from '../src/server/index.js';
import type { App, Bytes, Environ } from '../src/types.js';
import { connect, rawRequest, readUntil, sleep } from './helpers/raw-http.js';

const quiet = { write() {} };

/** A body of unknown length, sent chunked. */
function streamOf(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(text)), c.close()) });
}

/** Connection-level request headers: each hop has its own, and a bridge passes none on. */
const HOP = new Set([
  'HTTP_CONNECTION',
  'HTTP_KEEP_ALIVE',
  'HTTP_TE',
  'HTTP_UPGRADE',
  'HTTP_TRAILER',
  'HTTP_PROXY_AUTHORIZATION',
]);

/** What an app sees, minus what depends on the hop (addresses, ports, the server's name, hop-by-hop fields). */
function view(environ: Environ, body: Buffer) {
  const http: Record<string, string> = {};
  for (const [k, v] of Object.entries(environ)) if (k.startsWith('HTTP_') && !HOP.has(k)) http[k] = v as string;
  return {
    method: environ.REQUEST_METHOD,
    script: environ.SCRIPT_NAME,
    path: environ.PATH_INFO,
    query: environ.QUERY_STRING,
    uri: environ.REQUEST_URI,
    contentType: environ.CONTENT_TYPE,
    http,
    body: body.toString('latin1'),
  };
}

/** Records what it sees and answers with the status, headers and body the request asks for. */
function probe(seen: Array<ReturnType<typeof view>>): App {
  return async (environ, startResponse) => {
    const body = Buffer.from(await environ['wsgi.input'].read());
    seen.push(view(environ, body));
    const status = String(environ.HTTP_X_STATUS ?? '200 OK');
    startResponse(status, [
      ['Content-Type', 'application/octet-stream'],
      ['Set-Cookie', 'a=1; Path=/'],
      ['Set-Cookie', 'b=2; Path=/'],
      ['X-Echo', String(environ.HTTP_X_ECHO ?? '')],
    ]);
    return status.startsWith('204') || status.startsWith('304') ? [] : [body, Buffer.from('|end')];
  };
}

interface Sent {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

interface Got {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

async function send(server: NsgiServer, req: Sent): Promise<Got> {
  const port = (server.address() as AddressInfo).port;
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: '127.0.0.1',
        port,
        method: req.method,
        path: req.path,
        headers: req.headers.flatMap(([n, v]) => [n, v]) as never,
        agent: false,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const headers: Array<[string, string]> = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const name = res.rawHeaders[i]!.toLowerCase();
            // Framing and the date are the hop's own.
            if (['date', 'content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(name)) continue;
            headers.push([name, res.rawHeaders[i + 1]!]);
          }
          // Fetch's Headers keeps fields sorted by name: order is compared within a name only (Set-Cookie).
          headers.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
          resolve({ status: res.statusCode!, headers, body: Buffer.concat(parts).toString('latin1') });
        });
      },
    );
    r.on('error', reject);
    r.end(req.body.length > 0 ? req.body : undefined);
  });
}

const token = fc
  .stringMatching(/^[a-z][a-z0-9-]{0,8}$/)
  .filter(
    (n) =>
      ![
        'host',
        'content-length',
        'transfer-encoding',
        'connection',
        'keep-alive',
        'te',
        'upgrade',
        'trailer',
        'expect',
        'cookie',
        'x-status',
      ].includes(n),
  );
const value = fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/);
// Dot segments are resolved by every URL parser, so a Request cannot carry them (documented).
const segment = fc.stringMatching(/^([A-Za-z0-9._~-]|%[0-9A-F]{2}){0,6}$/).filter((s) => !/^(\.|%2E){1,2}$/i.test(s));

const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'PURGE'),
  segments: fc.array(segment, { maxLength: 4 }),
  query: fc.option(fc.stringMatching(/^[A-Za-z0-9=&%._-]{0,20}$/), { nil: undefined }),
  headers: fc.array(fc.tuple(token, value), { maxLength: 6 }),
  body: fc.uint8Array({ maxLength: 300 }),
  status: fc.constantFrom('200 OK', '201 Created', '404 Not Found', '418 I am a teapot', '204 No Content'),
});

/** `app` with a count of the close() calls its bodies get from the server. */
function countingCloses(app: App): { app: App; closes: () => number } {
  let n = 0;
  return {
    closes: () => n,
    app: async (environ, sr) => {
      const body = await app(environ, sr);
      return {
        [Symbol.asyncIterator]: () => (body as AsyncIterable<Bytes>)[Symbol.asyncIterator](),
        close: async () => (n++, await body.close?.()),
      };
    },
  };
}

/** Serves `probe` directly and through `bridge`, sends both the same requests, and compares. */
/**
 * Serves `app` (its body's close() counted) on the raw server, reads a GET's response until `seen`
 * shows up, then drops the connection; waits until `settled()` (or a second) and returns the count.
 */
async function abandonMidStream(app: App, seen: string, settled: (closes: number) => boolean): Promise<number> {
  const counted = countingCloses(app);
  const server = await serve(counted.app, { port: 0, errorLog: quiet });
  try {
    const sock = await connect((server.address() as AddressInfo).port);
    sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    await readUntil(sock, (t) => t.includes(seen));
    sock.destroy();
    for (let i = 0; i < 100 && !settled(counted.closes()); i++) await sleep(10);
    return counted.closes();
  } finally {
    await server.close(0);
  }
}

async function roundTrip(bridge: (app: App) => App): Promise<void> {
  const direct: Array<ReturnType<typeof view>> = [];
  const bridged: Array<ReturnType<typeof view>> = [];
  const a = await serve(probe(direct), { port: 0, errorLog: quiet });
  const b = await serve(bridge(probe(bridged)), { port: 0, errorLog: quiet });
  try {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const body = r.method === 'GET' ? Buffer.alloc(0) : Buffer.from(r.body);
        const sent: Sent = {
          method: r.method,
          path: `/${r.segments.join('/')}${r.query === undefined ? '' : `?${r.query}`}`,
          headers: [
            ['Host', 'example.test'],
            ['X-Status', r.status],
            ...r.headers,
            ['Cookie', 'x=1'],
            ['Cookie', 'y=2'],
          ],
          body,
        };
        if (body.length > 0) sent.headers.push(['Content-Type', 'text/plain']);
        const ra = await send(a, sent);
        const rb = await send(b, sent);
        assert.deepEqual(bridged.at(-1), direct.at(-1), 'the app sees the same request');
        assert.deepEqual(rb, ra, 'the client sees the same response');
      }),
      { numRuns: 60 },
    );
  } finally {
    await a.close(0);
    await b.close(0);
  }
}

describe('nsgi/fetch', () => {
  it('property: nsgi -> fetch -> nsgi keeps method, target, headers, body bytes and the response exactly', () =>
    roundTrip((app) => fromFetchHandler(toFetchHandler(app, { errorLog: quiet }))));

  it('an nsgi app under a Hono app, next to Hono routes, on @hono/node-server', async () => {
    const seen: Array<ReturnType<typeof view>> = [];
    const hono = new Hono();
    hono.get('/hono', (c) => c.text('from hono'));
    hono.mount('/legacy', toFetchHandler(probe(seen), { errorLog: quiet }));
    const server = honoServe({ fetch: hono.fetch, port: 0, hostname: '127.0.0.1' }) as http.Server;
    if (!server.listening) await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.equal(await (await fetch(`${url}/hono`)).text(), 'from hono');
      const res = await fetch(`${url}/legacy/x?y=1`, { method: 'POST', body: 'payload' });
      assert.equal(await res.text(), 'payload|end');
      assert.deepEqual(res.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/']);
      assert.equal(seen[0]!.path, '/x');
      assert.equal(seen[0]!.query, 'y=1');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('a Hono app as an nsgi app under the raw server', async () => {
    const hono = new Hono();
    hono.get('/hi/:name', (c) => c.json({ hi: c.req.param('name'), q: c.req.query('q') }));
    hono.post('/echo', async (c) => c.text(await c.req.text()));
    const server = await serve(fromFetchHandler(hono.fetch), { port: 0, errorLog: quiet });
    try {
      assert.deepEqual(await (await fetch(`${server.url}/hi/you?q=2`)).json(), { hi: 'you', q: '2' });
      assert.equal(
        await (await fetch(`${server.url}/echo`, { method: 'POST', body: 'x'.repeat(100_000) })).text(),
        'x'.repeat(100_000),
      );
      assert.equal((await fetch(`${server.url}/nothing`)).status, 404);
    } finally {
      await server.close(0);
    }
  });

  it('toFetchHandler: a client that goes away mid-stream ends the body, aborts nsgi.signal and closes once', async () => {
    let closed = 0;
    let signal: AbortSignal | undefined;
    const app: App = (environ, sr) => {
      signal = environ['nsgi.signal'];
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return {
        async *[Symbol.asyncIterator]() {
          for (;;) {
            yield Buffer.from('tick\n');
            await sleep(10);
          }
        },
        close: () => void closed++,
      };
    };
    const server = honoServe({
      fetch: toFetchHandler(app, { errorLog: quiet }),
      port: 0,
      hostname: '127.0.0.1',
    }) as http.Server;
    if (!server.listening) await new Promise((r) => server.once('listening', r));
    try {
      const sock = await connect((server.address() as AddressInfo).port);
      sock.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
      await readUntil(sock, (t) => t.includes('tick'));
      sock.destroy();
      for (let i = 0; i < 100 && closed === 0; i++) await sleep(10);
      assert.equal(closed, 1);
      assert.equal(signal?.aborted, true);
      await sleep(50);
      assert.equal(closed, 1);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it("fromFetchHandler: a client that goes away aborts the handler's request and closes the app body once", async () => {
    let aborted = false;
    const handler = (request: Request) => {
      request.signal.addEventListener('abort', () => (aborted = true));
      let n = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            await sleep(10);
            controller.enqueue(new TextEncoder().encode(`tick ${n++}\n`));
          },
        }),
        { headers: { 'Content-Type': 'text/plain' } },
      );
    };
    const closes = await abandonMidStream(fromFetchHandler(handler), 'tick 1', (n) => n > 0 && aborted);
    assert.equal(closes, 1);
    assert.equal(aborted, true);
  });

  it("fromFetchHandler: Hono middleware that edits the response, cookies, body parsers and a Response's own stream", async () => {
    const hono = new Hono();
    hono.use(async (c, next) => {
      await next();
      c.res.headers.set('x-after', 'set by middleware');
    });
    hono.get('/cookies', (c) => {
      c.header('Set-Cookie', 'a=1; Path=/', { append: true });
      c.header('Set-Cookie', 'b=2; Path=/', { append: true });
      return c.text('ok');
    });
    hono.post('/json', async (c) => c.json({ got: await c.req.json<unknown>() }));
    hono.post('/form', async (c) => c.json(await c.req.parseBody()));
    hono.get(
      '/stream',
      () =>
        new Response(
          new ReadableStream({ start: (s) => (s.enqueue(new TextEncoder().encode('streamed')), s.close()) }),
        ),
    );
    const logged: string[] = [];
    const bad = fromFetchHandler(() => ({ not: 'a response' }) as unknown as Response);
    // A Response of another Fetch implementation: status, statusText, headers and body are all it takes.
    const foreign = fromFetchHandler(
      () =>
        ({
          status: 201,
          statusText: 'Made',
          headers: new Headers({ 'x-foreign': '1' }),
          body: new Blob(['from elsewhere']).stream(),
        }) as unknown as Response,
    );
    const app = mount({ '/bad': bad, '/foreign': foreign, '/': fromFetchHandler(hono.fetch) });
    const server = await serve(app, { port: 0, errorLog: { write: (s: string) => void logged.push(s) } });
    try {
      const cookies = await fetch(`${server.url}/cookies`);
      assert.deepEqual(cookies.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/']);
      assert.equal(cookies.headers.get('x-after'), 'set by middleware');
      assert.equal(cookies.headers.get('content-type'), 'text/plain; charset=UTF-8');
      assert.equal(await cookies.text(), 'ok');
      const json = await fetch(`${server.url}/json`, {
        method: 'POST',
        body: '{"é":[1]}',
        headers: { 'content-type': 'application/json' },
      });
      assert.deepEqual(await json.json(), { got: { é: [1] } });
      const form = await fetch(`${server.url}/form`, {
        method: 'POST',
        body: new URLSearchParams({ a: '1', b: 'two' }),
      });
      assert.deepEqual(await form.json(), { a: '1', b: 'two' });
      const streamed = await fetch(`${server.url}/stream`);
      assert.equal(await streamed.text(), 'streamed');
      assert.equal(streamed.headers.get('x-after'), 'set by middleware');
      const other = await fetch(`${server.url}/foreign`);
      assert.equal(other.status, 201);
      assert.equal(other.headers.get('x-foreign'), '1');
      assert.equal(await other.text(), 'from elsewhere');
      const trace = await rawRequest(
        (server.address() as AddressInfo).port,
        'TRACE /cookies HTTP/1.1\r\nHost: h\r\n\r\n',
      );
      assert.equal(trace.responses[0]?.status, 501, 'a method Fetch cannot carry is not implemented, not an error');
      const refused = await fetch(`${server.url}/bad`);
      assert.equal(refused.status, 500);
      await refused.arrayBuffer();
      assert.match(logged.join(''), /must return \(or resolve to\) a Response/);
    } finally {
      await server.close(0);
    }
  });

  it('fromFetchHandler: Hono middleware that copy the request (bodyLimit on a stream, methodOverride, new Request(req, init), cache) answer as when called directly', async () => {
    // Hono's cache middleware needs the Cache API, which Node lacks: a small in-memory one.
    const stores = new Map<string, Map<string, Response>>();
    const caches = {
      open: async (name: string) => {
        const store = stores.get(name) ?? new Map<string, Response>();
        stores.set(name, store);
        return {
          match: async (key: string) => store.get(key)?.clone(),
          put: async (key: string, res: Response) => void store.set(key, new Response(await res.arrayBuffer(), res)),
        };
      },
    };
    const installed = (globalThis as { caches?: unknown }).caches;
    (globalThis as { caches?: unknown }).caches = caches;
    let rendered = 0;
    const hono = new Hono();
    hono.use('/posts', methodOverride({ app: hono }));
    hono.post('/upload', bodyLimit({ maxSize: 64, onError: (c) => c.text('too large', 413) }), async (c) =>
      c.text(`got ${(await c.req.text()).length}`),
    );
    hono.post('/copy', async (c) => {
      const copy = new Request(c.req.raw, { headers: { 'x-copied': 'yes' } });
      const again = new Request(copy);
      return c.json({
        method: again.method,
        url: again.url,
        header: again.headers.get('x-copied'),
        body: await again.text(),
      });
    });
    hono.get('/copy-init', async (c) => {
      const copy = new Request('http://elsewhere.example/x', c.req.raw);
      return c.json({ url: copy.url, method: copy.method, accept: copy.headers.get('accept') });
    });
    hono.delete('/posts', (c) => c.text('deleted'));
    hono.post('/posts', (c) => c.text('created'));
    hono.get('/cached', cache({ cacheName: 'c', wait: true }), (c) => c.text(`rendered ${++rendered}`));
    const cases: Array<() => Request> = [
      () => new Request('http://h.example/upload', { method: 'POST', body: streamOf('a'.repeat(40)), duplex: 'half' }),
      () => new Request('http://h.example/upload', { method: 'POST', body: streamOf('b'.repeat(100)), duplex: 'half' }),
      () => new Request('http://h.example/upload', { method: 'POST', body: 'c'.repeat(100) }),
      () => new Request('http://h.example/posts', { method: 'POST', body: new URLSearchParams({ _method: 'DELETE' }) }),
      () => new Request('http://h.example/posts', { method: 'POST', body: new URLSearchParams({ title: 'x' }) }),
      () => new Request('http://h.example/copy?q=1', { method: 'POST', body: 'payload' }),
      () => new Request('http://h.example/copy-init', { headers: { accept: 'text/x-test' } }),
      () => new Request('http://h.example/cached'),
      () => new Request('http://h.example/cached'),
    ];
    const summary = async (res: Response) => ({
      status: res.status,
      type: res.headers.get('content-type'),
      body: await res.text(),
    });
    const bridged = toFetchHandler(fromFetchHandler(hono.fetch), { errorLog: quiet });
    try {
      const direct = [];
      for (const make of cases) direct.push(await summary(await hono.fetch(make())));
      stores.clear();
      rendered = 0;
      const through = [];
      for (const make of cases) through.push(await summary(await bridged(make())));
      assert.deepEqual(through, direct);
      // What the cases show, so that a broken app answering the same both ways cannot pass.
      assert.deepEqual(
        direct.map((d) => `${d.status} ${d.body.slice(0, 40)}`),
        [
          '200 got 40',
          '413 too large',
          '413 too large',
          '200 deleted',
          '200 created',
          '200 {"method":"POST","url":"http://h.example',
          '200 {"url":"http://elsewhere.example/x","met',
          '200 rendered 1',
          '200 rendered 1',
        ],
      );
      assert.match(direct[5]!.body, /"header":"yes","body":"payload"/);
      assert.match(direct[6]!.body, /"accept":"text\/x-test"/);
    } finally {
      (globalThis as { caches?: unknown }).caches = installed;
    }
  });

  it('refuses what cannot work, naming the fix', () => {
    assert.throws(() => fromFetchHandler('nope' as never), /give the handler function/);
  });
});

describe('fromNodeListener', () => {
  it('property: nsgi -> node -> nsgi keeps method, target, headers, body bytes and the response exactly', () =>
    roundTrip((app) => fromNodeListener(toNodeListener(app, { errorLog: quiet }))));

  it('an Express app mounted beside nsgi apps on the raw server', async () => {
    const web = express();
    web.use(express.json());
    web.get('/hi', (req, res) => {
      res.cookie('a', '1');
      res.json({ q: req.query.q, url: req.url, ip: req.ip, protocol: req.protocol });
    });
    web.post('/echo', (req, res) => void res.json(req.body));
    web.get('/stream', (_req, res) => {
      res.type('text/plain');
      res.write('a');
      setTimeout(() => res.end('b'), 20);
    });
    const nsgi: App = (_e, sr) => {
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return [Buffer.from('native')];
    };
    const server = await serve(mount({ '/express': fromNodeListener(web), '/': nsgi }), { port: 0, errorLog: quiet });
    try {
      const hi = await fetch(`${server.url}/express/hi?q=1`);
      assert.deepEqual(await hi.json(), { q: '1', url: '/hi?q=1', ip: '127.0.0.1', protocol: 'http' });
      assert.deepEqual(hi.headers.getSetCookie(), ['a=1; Path=/']);
      const echo = await fetch(`${server.url}/express/echo`, {
        method: 'POST',
        body: '{"big":"' + 'x'.repeat(100_000) + '"}',
        headers: { 'Content-Type': 'application/json' },
      });
      assert.equal(((await echo.json()) as { big: string }).big.length, 100_000);
      assert.equal(await (await fetch(`${server.url}/express/stream`)).text(), 'ab');
      assert.equal((await fetch(`${server.url}/express/missing`)).status, 404);
      assert.equal(await (await fetch(`${server.url}/other`)).text(), 'native');
    } finally {
      await server.close(0);
    }
  });

  it("a client that goes away closes the listener's response ('close' without 'finish') and the body once", async () => {
    let resClosed = false;
    let finished = false;
    const listener = (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.on('close', () => (resClosed = true));
      res.on('finish', () => (finished = true));
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 10);
      res.on('close', () => clearInterval(timer));
    };
    const closes = await abandonMidStream(fromNodeListener(listener), 'tick', () => resClosed);
    assert.equal(resClosed, true);
    assert.equal(finished, false);
    assert.equal(closes, 1);
  });

  it('an on-headers hook runs once, as the head is written, on every path to the head', async () => {
    let fired = 0;
    const paths: Record<string, (res: http.ServerResponse) => void> = {
      send: (res) => void (res as express.Response).send('body'),
      json: (res) => void (res as express.Response).json({ a: 1 }),
      'end-without-write': (res) => void res.end(),
      'end-with-chunk': (res) => void res.end('body'),
      'write-then-end': (res) => {
        res.write('a');
        setTimeout(() => res.end('b'), 5);
      },
      flushHeaders: (res) => {
        res.flushHeaders();
        res.end('late');
      },
      'writeHead-with-object': (res) => void res.writeHead(201, { 'X-Own': 'o' }).end(),
      'writeHead-with-flat-array': (res) => void res.writeHead(201, ['X-Own', 'o']).end(),
      'writeHead-with-pairs': (res) => void res.writeHead(201, 'Made', [['X-Own', 'o']] as never).end(),
    };
    const web = express();
    web.use((_req, res, next) => {
      onHeaders(res, function (this: http.ServerResponse) {
        fired++;
        this.setHeader('X-Hooked', 'yes');
      });
      next();
    });
    for (const [name, answer] of Object.entries(paths)) web.get(`/${name}`, (_req, res) => answer(res));
    const server = await serve(fromNodeListener(web), { port: 0, errorLog: quiet });
    try {
      for (const name of Object.keys(paths)) {
        fired = 0;
        const res = await fetch(`${server.url}/${name}`);
        await res.arrayBuffer();
        assert.equal(res.headers.get('x-hooked'), 'yes', name);
        assert.equal(fired, 1, `${name}: the hook ran ${fired} times`);
        if (name.startsWith('writeHead')) assert.equal(res.headers.get('x-own'), 'o', name);
      }
    } finally {
      await server.close(0);
    }
  });

  it('an Express app with cookie-session keeps its session across requests', async () => {
    const web = express();
    web.use(cookieSession({ name: 'sess', keys: ['k1'] }));
    web.get('/count', (req, res) => {
      const session = req.session as { n?: number };
      session.n = (session.n ?? 0) + 1;
      res.send(`visit ${session.n}`);
    });
    const server = await serve(fromNodeListener(web), { port: 0, errorLog: quiet });
    try {
      let cookie = '';
      for (const expected of [1, 2, 3]) {
        const res = await fetch(`${server.url}/count`, { headers: { cookie } });
        assert.equal(await res.text(), `visit ${expected}`);
        const set = res.headers.getSetCookie();
        assert.ok(set.length > 0, `a session cookie on visit ${expected}`);
        cookie = set.map((c) => c.split(';')[0]).join('; ');
      }
    } finally {
      await server.close(0);
    }
  });

  it('an Express app with compression: streamed and whole responses compressed, Vary set', async () => {
    const web = express();
    web.use(compression({ threshold: 0 }));
    web.get('/whole', (_req, res) => void res.send('x'.repeat(5000)));
    web.get('/stream', (_req, res) => {
      res.type('text/plain');
      res.write('y'.repeat(3000));
      setTimeout(() => res.end('z'.repeat(3000)), 5);
    });
    const server = await serve(fromNodeListener(web), { port: 0, errorLog: quiet });
    try {
      for (const [path, body] of [
        ['/whole', 'x'.repeat(5000)],
        ['/stream', 'y'.repeat(3000) + 'z'.repeat(3000)],
      ] as const) {
        const res = await fetch(`${server.url}${path}`, { headers: { 'accept-encoding': 'gzip' } });
        assert.equal(res.headers.get('content-encoding'), 'gzip', path);
        assert.equal(res.headers.get('vary'), 'Accept-Encoding', path);
        assert.equal(await res.text(), body, path); // fetch() decodes gzip
      }
    } finally {
      await server.close(0);
    }
  });

  it('a header name with "_" reaches neither bridge\'s handler, as it reaches no app (SPEC §5.3)', async () => {
    const seen: string[] = [];
    const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
      seen.push(`node ${Object.keys(req.headers).sort().join(',')}`);
      res.end('ok');
    };
    const handler = (request: Request) => {
      seen.push(`fetch ${[...request.headers.keys()].sort().join(',')}`);
      return new Response('ok');
    };
    const server = await serve(mount({ '/node': fromNodeListener(listener), '/fetch': fromFetchHandler(handler) }), {
      port: 0,
      errorLog: quiet,
    });
    try {
      for (const path of ['/node', '/fetch']) {
        const r = await rawRequest(
          (server.address() as AddressInfo).port,
          `GET ${path} HTTP/1.1\r\nHost: h\r\nX-Auth-User: real\r\nX_Auth_User: spoofed\r\n\r\n`,
        );
        assert.equal(r.responses[0]?.status, 200);
      }
      assert.deepEqual(seen, ['node host,x-auth-user', 'fetch host,x-auth-user']);
    } finally {
      await server.close(0);
    }
  });

  it('refuses a listener that is not a function', () => {
    assert.throws(() => fromNodeListener(42 as never), /give a \(req, res\) function/);
  });
});
