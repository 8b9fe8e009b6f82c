import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import cookieParser from 'cookie-parser';
import cors from 'cors';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import request from 'supertest';
import { toExpress } from '../adapters/express.js';
import type { App, Environ } from '../src/types.js';
import { LogCapture } from './conformance/harness.js';

/** Answers with the routing keys it saw, and keeps every environ. */
function recorder() {
  const seen: Environ[] = [];
  const app: App = (environ, sr) => {
    seen.push(environ);
    sr('200 OK', [['Content-Type', 'text/plain']]);
    return [
      Buffer.from(
        `${environ.SCRIPT_NAME}|${environ.PATH_INFO}|${environ.QUERY_STRING}|${environ.REQUEST_URI}`,
        'latin1',
      ),
    ];
  };
  return { app, seen };
}

/** Echoes the request body and its CONTENT_LENGTH. */
const echo: App = async (environ, sr) => {
  const body = await environ['wsgi.input'].read();
  sr('200 OK', [
    ['Content-Type', 'application/octet-stream'],
    ['X-Content-Length', environ.CONTENT_LENGTH ?? '-'],
  ]);
  return [body];
};

describe('Express adapter', () => {
  it('mounts: SCRIPT_NAME from the mount, PATH_INFO the rest, query and REQUEST_URI from originalUrl', async () => {
    const { app } = recorder();
    const web = express();
    web.use('/legacy', toExpress(app));
    web.use(toExpress(app));
    const cases: Array<[string, string]> = [
      ['/legacy', '/legacy|||/legacy'],
      ['/legacy/', '/legacy|/||/legacy/'],
      ['/legacy/a%20b/c?x=1&y=%20', '/legacy|/a b/c|x=1&y=%20|/legacy/a%20b/c?x=1&y=%20'],
      ['/LEGACY/x', '/LEGACY|/x||/LEGACY/x'],
      ['/legacyx', '|/legacyx||/legacyx'],
      ['/', '|/||/'],
    ];
    for (const [url, expected] of cases) {
      const res = await request(web).get(url).expect(200);
      assert.equal(res.text, expected, url);
    }
  });

  it('nested routers compose their mounts; a URL rewritten by middleware is routed as rewritten', async () => {
    const { app } = recorder();
    const web = express();
    const outer = express.Router();
    const inner = express.Router();
    inner.use('/app', toExpress(app));
    outer.use('/v1', inner);
    web.use('/api', outer);
    web.use((req, _res, next) => {
      if (req.url.startsWith('/old/')) req.url = '/api/v1/app/' + req.url.slice(5);
      next();
    });
    web.use('/api', outer);
    assert.equal(
      (await request(web).get('/api/v1/app/users?id=7').expect(200)).text,
      '/api/v1/app|/users|id=7|/api/v1/app/users?id=7',
    );
    assert.equal((await request(web).get('/api/v1/app').expect(200)).text, '/api/v1/app|||/api/v1/app');
    assert.equal(
      (await request(web).get('/old/users?id=8').expect(200)).text,
      '/api/v1/app|/users|id=8|/old/users?id=8',
    );
  });

  it('never reads or writes req.query', async () => {
    const web = express();
    web.use((req, _res, next) => {
      Object.defineProperty(req, 'query', {
        get() {
          throw new Error('req.query was read');
        },
      });
      next();
    });
    web.use(toExpress(recorder().app));
    assert.equal((await request(web).get('/q?a[b]=1').expect(200)).text, '|/q|a[b]=1|/q?a[b]=1');
  });

  describe('a body read upstream', () => {
    const payload = '{"name": "caf\u00e9",  "n": 1}';

    it('is streamed untouched when the app is mounted before the parsers', async () => {
      const web = express();
      web.use('/raw', toExpress(echo));
      web.use(express.json());
      const res = await request(web).post('/raw').set('Content-Type', 'application/json').send(payload).expect(200);
      assert.equal((res.body as Buffer).toString(), payload);
    });

    it('is replayed byte for byte from the rawBody a verify hook kept, or from express.raw()/express.text()', async () => {
      const web = express();
      web.use(
        '/json',
        express.json({ verify: (req, _res, buf) => ((req as { rawBody?: Buffer }).rawBody = buf) }),
        toExpress(echo),
      );
      web.use('/raw', express.raw({ type: '*/*' }), toExpress(echo));
      web.use('/text', express.text(), toExpress(echo));
      for (const [path, type] of [
        ['/json', 'application/json'],
        ['/raw', 'application/octet-stream'],
        ['/text', 'text/plain; charset=utf-8'],
      ] as const) {
        const res = await request(web).post(path).set('Content-Type', type).send(payload).expect(200);
        assert.equal((res.body as Buffer).toString(), payload, path);
        assert.equal(res.headers['x-content-length'], String(Buffer.byteLength(payload)), path);
      }
    });

    it('is a clear 500 naming the fix when the bytes are gone, never a hang', async () => {
      const log = new LogCapture();
      const web = express();
      web.use(express.json());
      web.use(toExpress(echo, { errorLog: log }));
      const started = Date.now();
      await request(web).post('/').set('Content-Type', 'application/json').send(payload).expect(500);
      assert.ok(Date.now() - started < 2000);
      assert.match(log.text, /ERR_NSGI_BODY_CONSUMED|already read by a body parser/);
      assert.match(log.text, /mount toExpress\(\) before the body parsers/);
      assert.match(log.text, /verify: \(req, res, buf\) => \{ req\.rawBody = buf \}/);
      // An app that does not read the body is not affected.
      const web2 = express();
      web2.use(express.json());
      web2.use(toExpress(recorder().app));
      await request(web2).post('/x').send({ a: 1 }).expect(200);
    });

    it('with a rawBody that disagrees with Content-Length (decompressed) is refused, not passed on wrong', async () => {
      const log = new LogCapture();
      const web = express();
      web.use((req, _res, next) => {
        (req as { rawBody?: Buffer }).rawBody = Buffer.from('short');
        req.resume();
        req.on('end', () => next());
      });
      web.use(toExpress(echo, { errorLog: log }));
      await request(web).post('/').set('Content-Type', 'text/plain').send('a longer body').expect(500);
      assert.match(log.text, /holds 5 bytes where Content-Length says 13/);
    });
  });

  it('keeps headers set by earlier middleware (helmet, cors, cookies); the app wins on a clash; Set-Cookie and Vary add up', async () => {
    const app: App = (_env, sr) => {
      sr('200 OK', [
        ['Content-Type', 'text/plain'],
        ['Set-Cookie', 'a=1; Path=/'],
        ['Set-Cookie', 'b=2; Path=/'],
        ['Vary', 'Accept-Encoding'],
        ['X-Frame-Options', 'DENY'],
      ]);
      return [Buffer.from('ok')];
    };
    const web = express();
    web.use(helmet());
    web.use(cors({ origin: 'https://example.com' }));
    web.use(cookieParser());
    web.use((_req, res, next) => {
      res.cookie('session', 's1');
      next();
    });
    web.use('/app', toExpress(app));
    const res = await request(web).get('/app/x').set('Origin', 'https://example.com').expect(200, 'ok');
    assert.equal(res.headers['access-control-allow-origin'], 'https://example.com');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.ok(res.headers['content-security-policy']);
    assert.equal(res.headers['x-frame-options'], 'DENY', 'the app overrides helmet');
    assert.deepEqual(res.headers['set-cookie'], ['session=s1; Path=/', 'a=1; Path=/', 'b=2; Path=/']);
    assert.equal(res.headers['vary'], 'Origin, Accept-Encoding');
    assert.equal(res.headers['content-type'], 'text/plain');
  });

  it('fallthrough: the app’s 404 calls next() so later routes run; its body is closed, not sent', async () => {
    let closed = 0;
    const app: App = (environ, sr) => {
      const found = environ.PATH_INFO === '/here';
      sr(found ? '200 OK' : '404 Not Found', [['Content-Type', 'text/plain']]);
      return Object.assign([Buffer.from(found ? 'nsgi' : 'app 404')], { close: () => void closed++ });
    };
    const web = express();
    web.use(toExpress(app, { fallthrough: true }));
    web.get('/there', (_req, res) => void res.send('express'));
    await request(web).get('/here').expect(200, 'nsgi');
    await request(web).get('/there').expect(200, 'express');
    const miss = await request(web).get('/nowhere').expect(404);
    assert.doesNotMatch(miss.text, /app 404/);
    assert.equal(closed, 3);
    // Without the option the app's 404 is the answer.
    const plain = express();
    plain.use(toExpress(app));
    plain.get('/there', (_req, res) => void res.send('express'));
    await request(plain).get('/there').expect(404, 'app 404');
  });

  it('errors: next(err) before headers with forwardErrors, else a 500; after headers the response is aborted', async () => {
    const boom = new Error('boom');
    let closed = 0;
    const failing: App = () => {
      throw boom;
    };
    const late: App = (_env, sr) => {
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return {
        *[Symbol.iterator]() {
          yield Buffer.from('partial');
          throw boom;
        },
        close: () => void closed++,
      };
    };
    const seen: unknown[] = [];
    const web = express();
    web.use('/fwd', toExpress(failing, { forwardErrors: true, errorLog: new LogCapture() }));
    web.use('/plain', toExpress(failing, { errorLog: new LogCapture() }));
    web.use('/late', toExpress(late, { forwardErrors: true, errorLog: new LogCapture() }));
    web.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      seen.push(err);
      res.status(418).send('handled by express');
    });
    await request(web).get('/fwd').expect(418, 'handled by express');
    assert.equal(seen[0], boom);
    await request(web).get('/plain').expect(500, 'Internal Server Error\n');
    await assert.rejects(request(web).get('/late'));
    assert.equal(seen.length, 1, 'an error after headers never reaches next()');
    assert.equal(closed, 1);
  });

  it('trust proxy: the socket’s address and scheme by default; Express’s req.ip and req.protocol when asked', async () => {
    const { app, seen } = recorder();
    const web = express();
    web.set('trust proxy', 'loopback');
    web.use('/off', toExpress(app));
    web.use('/on', toExpress(app, { expressTrustProxy: true }));
    const fwd = { 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https' };
    await request(web).get('/off').set(fwd).expect(200);
    await request(web).get('/on').set(fwd).expect(200);
    const [off, on] = seen;
    assert.equal(off!.REMOTE_ADDR, '127.0.0.1');
    assert.equal(off!['wsgi.url_scheme'], 'http');
    assert.match(off!.REMOTE_PORT ?? '', /^\d+$/);
    assert.equal(on!.REMOTE_ADDR, '203.0.113.9');
    assert.equal(on!['wsgi.url_scheme'], 'https');
    assert.equal(on!.HTTPS, 'on');
    assert.equal(on!.REMOTE_PORT, undefined);
    // Express not trusting the peer: the headers change nothing, even when asked.
    const strict = express();
    strict.use(toExpress(app, { expressTrustProxy: true }));
    await request(strict).get('/').set(fwd).expect(200);
    assert.equal(seen[2]!.REMOTE_ADDR, '127.0.0.1');
    assert.equal(seen[2]!['wsgi.url_scheme'], 'http');
  });

  it('HEAD through Express: headers with the GET length, no body, close() once', async () => {
    let closed = 0;
    const app: App = (_env, sr) => {
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return Object.assign([Buffer.from('twelve bytes')], { close: () => void closed++ });
    };
    const web = express();
    web.use(toExpress(app));
    const res = await request(web).head('/').expect(200);
    assert.equal(res.headers['content-length'], '12');
    assert.equal(res.text, undefined);
    assert.equal(closed, 1);
  });
});
