import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import request from 'supertest';
import { nsgiPlugin } from '../adapters/fastify.js';
import type { App, Environ } from '../src/types.js';
import { connect, readUntil, sleep } from './helpers/raw-http.js';

/** Echoes the body with what the app saw of the request. */
const echo: App = async (environ, sr) => {
  const body = await environ['wsgi.input'].read();
  sr('200 OK', [
    ['Content-Type', 'application/octet-stream'],
    ['X-Script-Name', environ.SCRIPT_NAME],
    ['X-Path-Info', environ.PATH_INFO],
    ['X-Content-Type', environ.CONTENT_TYPE ?? '-'],
  ]);
  return [body];
};

const hello =
  (text: string): App =>
  (_env, sr) => {
    sr('200 OK', [['Content-Type', 'text/plain']]);
    return [Buffer.from(text)];
  };

async function withFastify(
  setup: (f: FastifyInstance) => PromiseLike<unknown> | void,
  fn: (f: FastifyInstance) => Promise<void>,
  options: FastifyServerOptions = {},
): Promise<void> {
  const fastify = Fastify(options);
  try {
    await setup(fastify);
    await fastify.ready();
    await fn(fastify);
  } finally {
    await fastify.close();
  }
}

describe('Fastify plugin', () => {
  it('a JSON POST reaches the app byte for byte, through inject() and over the network', async () => {
    const json = '{ "name":"caf\u00e9",   "list": [1, 2,3] }';
    await withFastify(
      (f) => f.register(nsgiPlugin, { app: echo, prefix: '/legacy' }),
      async (f) => {
        const injected = await f.inject({
          method: 'POST',
          url: '/legacy/items',
          headers: { 'content-type': 'application/json' },
          payload: json,
        });
        assert.equal(injected.statusCode, 200);
        assert.equal(injected.body, json);
        assert.equal(injected.headers['x-script-name'], '/legacy');
        assert.equal(injected.headers['x-path-info'], '/items');
        assert.equal(injected.headers['x-content-type'], 'application/json');
        const res = await request(f.server)
          .post('/legacy')
          .set('Content-Type', 'application/json')
          .send(json)
          .expect(200);
        assert.equal((res.body as Buffer).toString(), json);
        assert.equal(res.headers['x-path-info'], '');
      },
    );
  });

  it('onSend hooks and @fastify/cors apply to nsgi responses; the app adds no Content-Type Fastify invents', async () => {
    const untyped: App = (_env, sr) => {
      sr('200 OK', []);
      return [Buffer.from('raw bytes')];
    };
    await withFastify(
      async (f) => {
        await f.register(cors, { origin: 'https://example.com' });
        f.addHook('onSend', async (_req, reply, payload) => {
          reply.header('x-on-send', 'ran');
          return payload;
        });
        await f.register(nsgiPlugin, { app: hello('hi'), prefix: '/a' });
        await f.register(nsgiPlugin, { app: untyped, prefix: '/raw' });
      },
      async (f) => {
        const res = await request(f.server).get('/a/x').set('Origin', 'https://example.com').expect(200, 'hi');
        assert.equal(res.headers['access-control-allow-origin'], 'https://example.com');
        assert.equal(res.headers['x-on-send'], 'ran');
        assert.equal(res.headers['content-type'], 'text/plain');
        const raw = await f.inject({ url: '/raw/' });
        assert.equal(raw.body, 'raw bytes');
        assert.equal(raw.headers['content-type'], undefined);
      },
    );
  });

  for (const hijack of [false, true]) {
    it(`headers set by plugins and hooks before the app are kept; the app wins on a clash; Set-Cookie and Vary add up (hijack: ${hijack})`, async () => {
      const app: App = (_env, sr) => {
        sr('200 OK', [
          ['Content-Type', 'text/plain'],
          ['Set-Cookie', 'a=1; Path=/'],
          ['Set-Cookie', 'b=2; Path=/'],
          ['Vary', 'Accept-Encoding'],
          ['Vary', 'origin'],
          ['X-Frame-Options', 'DENY'],
        ]);
        return [Buffer.from('ok')];
      };
      await withFastify(
        async (f) => {
          // With more than one allowed origin the answer depends on Origin: it sets Vary: Origin in onRequest.
          await f.register(cors, { origin: ['https://example.com', 'https://other.example'] });
          f.addHook('onRequest', async (_req, reply) => {
            reply.header('set-cookie', 'session=s1; Path=/');
            reply.header('x-frame-options', 'SAMEORIGIN');
          });
          await f.register(nsgiPlugin, { app, prefix: '/app', hijack });
        },
        async (f) => {
          const res = await request(f.server).get('/app/x').set('Origin', 'https://example.com').expect(200, 'ok');
          assert.equal(res.headers['access-control-allow-origin'], 'https://example.com');
          assert.equal(res.headers['vary'], 'Origin, Accept-Encoding');
          assert.deepEqual(res.headers['set-cookie'], ['session=s1; Path=/', 'a=1; Path=/', 'b=2; Path=/']);
          assert.equal(res.headers['x-frame-options'], 'DENY', 'the app overrides the hook');
        },
      );
    });
  }

  it('a request whose framing the core refuses gets exactly one response, then the connection closes', async () => {
    for (const hijack of [false, true]) {
      await withFastify(
        (f) => f.register(nsgiPlugin, { app: hello('never'), prefix: '', hijack }),
        async (f) => {
          await f.listen({ port: 0, host: '127.0.0.1' });
          const { port } = f.server.address() as { port: number };
          for (const te of ['gzip', 'identity', 'chunked, gzip', 'x-unknown']) {
            const socket = await connect(port);
            socket.write(`POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ${te}\r\n\r\nabc\r\n\r\n`);
            const chunks: Buffer[] = [];
            socket.on('data', (c: Buffer) => chunks.push(c));
            await new Promise((resolve) => socket.once('close', resolve));
            const text = Buffer.concat(chunks).toString('latin1');
            assert.equal(
              text.match(/^HTTP\/1\.1 /gm)?.length,
              1,
              `one response to Transfer-Encoding: ${te} (hijack: ${hijack}):\n${text}`,
            );
            assert.match(text, /^HTTP\/1\.1 400 /);
          }
        },
      );
    }
  });

  it('two plugins with different prefixes and apps coexist; Fastify routes outside them are untouched', async () => {
    await withFastify(
      async (f) => {
        await f.register(nsgiPlugin, { app: hello('one'), prefix: '/one' });
        await f.register(nsgiPlugin, { app: hello('two'), prefix: '/two' });
        f.post('/api/echo', async (req) => ({ got: req.body }));
        f.get('/one-more', async () => 'fastify route');
      },
      async (f) => {
        await request(f.server).get('/one').expect(200, 'one');
        await request(f.server).get('/two/deep/path?q=1').expect(200, 'two');
        await request(f.server).get('/one-more').expect(200, 'fastify route');
        // The plugin's pass-through body parser is scoped to it: JSON is still parsed elsewhere.
        await request(f.server)
          .post('/api/echo')
          .send({ a: 1 })
          .expect(200, { got: { a: 1 } });
        await request(f.server).get('/three').expect(404);
      },
    );
  });

  it('HEAD: the GET headers and length, no body, close() once', async () => {
    let closed = 0;
    let pulled = 0;
    const app: App = (_env, sr) => {
      sr('200 OK', [
        ['Content-Type', 'text/plain'],
        ['Content-Length', '5'],
      ]);
      return {
        *[Symbol.iterator]() {
          pulled++;
          yield Buffer.from('hello');
        },
        close: () => void closed++,
      };
    };
    await withFastify(
      (f) => f.register(nsgiPlugin, { app, prefix: '/h' }),
      async (f) => {
        const res = await f.inject({ method: 'HEAD', url: '/h/x' });
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-length'], '5');
        assert.equal(res.body, '');
        assert.equal(closed, 1);
        assert.ok(pulled <= 1);
      },
    );
  });

  it("Fastify's handlerTimeout reaches the app through request.signal: nsgi.signal aborts, close() runs once", async () => {
    let closed = 0;
    let reason: unknown;
    const waits: App = async (environ: Environ, sr) => {
      const signal = environ['nsgi.signal'];
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      reason = signal.reason;
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return { *[Symbol.iterator]() {}, close: () => void closed++ };
    };
    await withFastify(
      (f) => f.register(nsgiPlugin, { app: waits, prefix: '/w' }),
      async (f) => {
        const res = await f.inject({ method: 'GET', url: '/w/' });
        assert.equal(res.statusCode, 503);
        for (let i = 0; i < 100 && closed === 0; i++) await sleep(10);
        assert.equal((reason as { code?: string }).code, 'FST_ERR_HANDLER_TIMEOUT');
        assert.equal(closed, 1);
      },
      { handlerTimeout: 100 },
    );
  });

  it('a client that goes away mid-stream ends the body: nsgi.signal aborts and close() runs once', async () => {
    let closed = 0;
    let signal: AbortSignal | undefined;
    const stream: App = (environ: Environ, sr) => {
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
    await withFastify(
      (f) => f.register(nsgiPlugin, { app: stream, prefix: '/s' }),
      async (f) => {
        await f.listen({ port: 0, host: '127.0.0.1' });
        const port = (f.server.address() as { port: number }).port;
        const sock = await connect(port);
        sock.write('GET /s/ HTTP/1.1\r\nHost: h\r\n\r\n');
        await readUntil(sock, (t) => t.includes('tick'));
        sock.destroy();
        for (let i = 0; i < 100 && closed === 0; i++) await sleep(10);
        assert.equal(closed, 1);
        assert.equal(signal?.aborted, true);
        await sleep(50);
        assert.equal(closed, 1);
      },
    );
  });

  it('errors before headers go to Fastify’s error handler with forwardErrors, else a generic 500; wsgi.errors goes to request.log', async () => {
    const boom = new Error('boom');
    const failing: App = (environ) => {
      environ['wsgi.errors'].write('about to fail\n');
      throw boom;
    };
    const logged: string[] = [];
    const fastify = Fastify({
      logger: { level: 'error', stream: { write: (line: string) => void logged.push(line) } },
    });
    try {
      let handled: unknown;
      fastify.setErrorHandler((err, _req, reply) => {
        handled = err;
        void reply.code(418).send('handled by fastify');
      });
      await fastify.register(nsgiPlugin, { app: failing, prefix: '/fwd', forwardErrors: true });
      await fastify.register(nsgiPlugin, { app: failing, prefix: '/plain' });
      await fastify.ready();
      const fwd = await fastify.inject({ url: '/fwd/' });
      assert.equal(fwd.statusCode, 418);
      assert.equal(fwd.body, 'handled by fastify');
      assert.equal(handled, boom);
      const plain = await fastify.inject({ url: '/plain/' });
      assert.equal(plain.statusCode, 500);
      assert.equal(plain.body, 'Internal Server Error\n');
      const records = logged.map((l) => JSON.parse(l) as { level: number; msg: string; reqId?: string });
      assert.ok(
        records.some((r) => r.level === 50 && r.msg === 'about to fail' && r.reqId !== undefined),
        JSON.stringify(records),
      );
      assert.ok(records.some((r) => r.level === 50 && /error in app/.test(r.msg) && /boom/.test(r.msg)));
    } finally {
      await fastify.close();
    }
  });

  it('hijack: true writes to the socket itself, keeping headers plugins set on the reply', async () => {
    await withFastify(
      async (f) => {
        await f.register(cors, { origin: '*' });
        f.addHook('onSend', async (_req, reply, payload) => {
          reply.header('x-on-send', 'ran');
          return payload;
        });
        await f.register(nsgiPlugin, { app: hello('direct'), prefix: '/direct', hijack: true });
      },
      async (f) => {
        const res = await request(f.server).get('/direct/').set('Origin', 'https://x.example').expect(200, 'direct');
        assert.equal(res.headers['access-control-allow-origin'], '*');
        assert.equal(res.headers['x-on-send'], undefined, 'hijacked responses skip onSend');
      },
    );
  });

  it('Fastify’s bodyLimit is the body limit unless maxBodySize is given', async () => {
    const fastify = Fastify({ bodyLimit: 10 });
    try {
      await fastify.register(nsgiPlugin, { app: echo, prefix: '/small' });
      await fastify.register(nsgiPlugin, { app: echo, prefix: '/big', maxBodySize: 100 });
      await fastify.ready();
      assert.equal((await fastify.inject({ method: 'POST', url: '/small/', payload: 'x'.repeat(11) })).statusCode, 413);
      assert.equal((await fastify.inject({ method: 'POST', url: '/small/', payload: 'x'.repeat(10) })).statusCode, 200);
      assert.equal(
        (await fastify.inject({ method: 'POST', url: '/big/', payload: 'x'.repeat(50) })).body,
        'x'.repeat(50),
      );
    } finally {
      await fastify.close();
    }
  });

  it('wrong options are refused at registration with the option named, and the server does not crash', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /nsgiPlugin: undefined is not an nsgi app: give a function/],
      [{ app: hello('x'), hijack: true, forwardErrors: true }, /nsgiPlugin: forwardErrors .* hijacked reply/],
      [
        { app: hello('x'), prefix: '/x/' },
        /nsgiPlugin: the plugin prefix must be a path that starts with '\/' and does not end with '\/'/,
      ],
      [{ app: hello('x'), maxBodySize: -1 }, /nsgiPlugin: maxBodySize must be a number >= 0/],
    ];
    for (const [options, message] of cases) {
      const fastify = Fastify();
      try {
        await assert.rejects(async () => {
          await fastify.register(nsgiPlugin, options as never);
          await fastify.ready();
        }, message);
      } finally {
        await fastify.close().catch(() => undefined);
      }
    }
  });
});
