/**
 * WebSocket (SPEC §16) on every host that carries it: the raw server, node:http, Express and
 * Fastify, at the root and under a mount. Each case has a slug (`ws.*`).
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import express from 'express';
import Fastify from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import { expressUpgrade, toExpress } from '../adapters/express.js';
import { nsgiPlugin } from '../adapters/fastify.js';
import { toNodeListener } from '../adapters/node.js';
import { after, before, describe, test } from 'node:test';
import WebSocket, { type RawData } from 'ws';
import type { NsgiWebSocket, WebSocketOffer } from '../src/websocket.js';
import type { App, Environ } from '../src/types.js';
import type { ResponseRecord } from '../src/gateway.js';
import { accessLog, compress, errors, ipFilter, router, validate, type LintError } from '../src/middleware/index.js';
import { expressFactory, fastifyFactory, nodeFactory, rawFactory } from './conformance/factories.js';
import { listening, type FactoryOptions, type ServerFactory, type ServerHandle } from './conformance/harness.js';

const HOSTS: Array<[string, ServerFactory]> = [
  ['the raw server', rawFactory],
  ['node:http', nodeFactory],
  ['Express', expressFactory],
  ['Fastify', fastifyFactory],
];

const offerOf = (environ: Environ) => environ['nsgi.websocket'] as WebSocketOffer | undefined;

/** What the app saw, for the assertions. */
interface Seen {
  errors: string[];
  closes: number;
  signalAborted: boolean[];
  closeCodes: Array<number | undefined>;
  records: ResponseRecord[];
  keys: boolean[];
}

/** One app that does what the path says. */
function testApp(seen: Seen): App {
  const behaviours: Record<string, (env: Environ, offer: WebSocketOffer) => Promise<Iterable<Uint8Array>>> = {
    async '/echo'(env, offer) {
      const ws = await offer.accept({ protocol: offer.protocols.includes('chat') ? 'chat' : undefined });
      for await (const m of ws) await ws.send(m);
      seen.closeCodes.push(ws.closeCode);
      seen.signalAborted.push(env['nsgi.signal'].aborted);
      return [];
    },
    async '/bad-protocol'(_env, offer) {
      try {
        await offer.accept({ protocol: 'not-offered' });
      } catch (err) {
        seen.errors.push((err as { code: string }).code);
      }
      throw new Error('refused');
    },
    async '/accept-string'(_env, offer) {
      try {
        await offer.accept('chat' as never);
      } catch (err) {
        seen.errors.push((err as { code: string }).code);
      }
      throw new Error('refused');
    },
    async '/environ'(env, offer) {
      // Once a socket is open the server trims what its request keeps; what the app reads is unchanged.
      const before = JSON.stringify(env, (key, value: unknown) => (key === 'nsgi.websocket' ? undefined : value));
      const ws = await offer.accept();
      const after = JSON.stringify(env, (key, value: unknown) => (key === 'nsgi.websocket' ? undefined : value));
      await ws.send(after === before ? 'same' : `before ${before}\nafter ${after}`);
      await ws.close();
      return [];
    },
    async '/close-4001'(_env, offer) {
      const ws = await offer.accept();
      await ws.close(4001, 'bye');
      seen.closeCodes.push(ws.closeCode);
      return [];
    },
    async '/ping'(_env, offer) {
      const ws = await offer.accept();
      ws.ping('hi');
      for await (const m of ws) await ws.send(m);
      return [];
    },
    async '/start-after-accept'(_env, offer) {
      await offer.accept();
      return [];
    },
    async '/twice'(_env, offer) {
      const ws = await offer.accept();
      try {
        await offer.accept();
      } catch (err) {
        seen.errors.push((err as { code: string }).code);
      }
      await ws.close();
      return [];
    },
    async '/bytes-after-accept'(_env, offer) {
      await offer.accept();
      return [Buffer.from('oops')];
    },
    async '/flood'(_env, offer) {
      // Sends 64 KiB messages to a client that does not read, until a send() stays pending.
      const ws = await offer.accept();
      const chunk = new Uint8Array(64 * 1024);
      let sent = 0;
      for (;;) {
        const pending = ws.send(chunk);
        const done = await Promise.race([pending.then(() => true), delay(300).then(() => false)]);
        sent += chunk.length;
        if (!done) break;
        if (sent > 256 * 1024 * 1024) break;
      }
      await ws.send(`sent ${sent}`);
      for await (const m of ws) void m;
      return [];
    },
  };
  return async (environ, startResponse) => {
    const offer = offerOf(environ);
    seen.keys.push(offer !== undefined);
    const path = environ.PATH_INFO;
    if (offer === undefined) {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [Buffer.from('plain http')];
    }
    if (path === '/refuse') {
      startResponse('403 Forbidden', [['Content-Type', 'text/plain']]);
      return [Buffer.from('go away')];
    }
    if (path === '/start-after-accept') {
      await offer.accept();
      try {
        startResponse('200 OK', []);
      } catch (err) {
        seen.errors.push((err as { code: string }).code);
      }
      return [];
    }
    if (path === '/accept-after-start') {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      try {
        await offer.accept();
      } catch (err) {
        seen.errors.push((err as { code: string }).code);
      }
      return [Buffer.from('http')];
    }
    const run = behaviours[path];
    if (run === undefined) {
      startResponse('404 Not Found', [['Content-Type', 'text/plain']]);
      return [Buffer.from('no such socket')];
    }
    try {
      return await run(environ, offer);
    } catch {
      startResponse('400 Bad Request', [['Content-Type', 'text/plain']]);
      return [Buffer.from('refused')];
    }
  };
}

/** A full garbage collection, for the tests that check what an open socket keeps. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Counts close() calls on every body the app returns. */
function countingCloses(app: App, seen: Seen): App {
  return async (environ, startResponse) => {
    const body = await app(environ, startResponse);
    return Object.assign(body, {
      close() {
        seen.closes++;
      },
    });
  };
}

/** A client with its messages queued. */
class Client {
  readonly ws: WebSocket;
  readonly messages: Array<string | Buffer> = [];
  #waiters: Array<() => void> = [];
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.messages.push(isBinary ? (data as Buffer) : (data as Buffer).toString('utf8'));
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  async next(): Promise<string | Buffer> {
    while (this.messages.length === 0) await new Promise<void>((r) => this.#waiters.push(r));
    return this.messages.shift()!;
  }
  async closed(): Promise<[number, string]> {
    if (this.ws.readyState === WebSocket.CLOSED) return [-1, ''];
    const [code, reason] = (await once(this.ws, 'close')) as [number, Buffer];
    return [code, reason.toString()];
  }
}

async function open(url: string, protocols?: string[], options?: WebSocket.ClientOptions): Promise<Client> {
  const ws = new WebSocket(url, protocols, options);
  const client = new Client(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected ${res.statusCode}`)));
  });
  return client;
}

/** The HTTP answer to a handshake the server does not accept. */
function refusal(
  url: string,
  options?: WebSocket.ClientOptions,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => reject(new Error('the handshake was accepted')));
    ws.once('error', () => {});
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
  });
}

/** Sends raw bytes and reads until the server closes. */
async function rawExchange(port: number, request: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(request);
  let out = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (out += d));
  await Promise.race([once(socket, 'close'), delay(3000)]);
  socket.destroy();
  return out;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const handshake = (path: string, extra = '', method = 'GET', version = '1.1') =>
  `${method} ${path} HTTP/${version}\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n`;

for (const [name, factory] of HOSTS) {
  for (const mount of ['', '/mnt']) {
    describe(`WebSocket on ${name}${mount === '' ? '' : ` mounted at ${mount}`}`, () => {
      let handle: ServerHandle;
      let seen: Seen;
      let base: string;
      const start = async (options: Partial<FactoryOptions> = {}) => {
        seen = { errors: [], closes: 0, signalAborted: [], closeCodes: [], records: [], keys: [] };
        handle = await factory(countingCloses(testApp(seen), seen), {
          mount,
          onResponse: (r) => seen.records.push(r),
          websocket: { maxPayload: 1024, highWaterMark: 64 * 1024 },
          ...options,
        });
        base = `ws://127.0.0.1:${handle.port}${mount}`;
      };
      before(() => start());
      after(() => handle.close());

      test('ws.handshake: 101 with the right Sec-WebSocket-Accept, the offered subprotocol chosen', async () => {
        const c = await open(`${base}/echo`, ['chat', 'other']);
        assert.equal(c.ws.protocol, 'chat');
        c.ws.close();
        await c.closed();
      });

      test('ws.echo: text arrives as a string, binary as bytes, both echoed', async () => {
        const c = await open(`${base}/echo`);
        c.ws.send('héllo');
        c.ws.send(Buffer.from([0, 1, 255]));
        assert.equal(await c.next(), 'héllo');
        assert.deepEqual([...((await c.next()) as Buffer)], [0, 1, 255]);
        c.ws.close(4002, 'done');
        assert.deepEqual(await c.closed(), [4002, 'done']);
        await delay(50);
        assert.equal(seen.closeCodes.at(-1), 4002, 'the app sees the client close code');
        assert.equal(seen.signalAborted.at(-1), true, 'nsgi.signal aborted once the socket closed');
      });

      test('ws.environ-after-accept: the environ and nsgi.raw_headers read the same once the socket is open', async () => {
        const c = await open(`${base}/environ`, undefined, {
          headers: { 'X-Long': 'a long header value, '.repeat(8) },
        });
        assert.equal(await c.next(), 'same');
        await c.closed();
      });

      test('ws.fragmented: a message sent in fragments arrives whole', async () => {
        const c = await open(`${base}/echo`);
        c.ws.send('frag', { fin: false });
        c.ws.send('men', { fin: false });
        c.ws.send('ted', { fin: true });
        assert.equal(await c.next(), 'fragmented');
        c.ws.close();
        await c.closed();
      });

      test('ws.order: 1,000 messages come back in order', async () => {
        const c = await open(`${base}/echo`);
        for (let i = 0; i < 1000; i++) c.ws.send(String(i));
        for (let i = 0; i < 1000; i++) assert.equal(await c.next(), String(i));
        c.ws.close();
        await c.closed();
      });

      test('ws.max-payload: a message at maxPayload passes, one byte more closes with 1009', async () => {
        const c = await open(`${base}/echo`);
        c.ws.send(Buffer.alloc(1024, 7));
        assert.equal(((await c.next()) as Buffer).length, 1024);
        c.ws.send(Buffer.alloc(1025, 7));
        const [code] = await c.closed();
        assert.equal(code, 1009);
      });

      test('ws.protocol-errors: invalid UTF-8 in a text frame closes with 1007, reserved bits with 1002', async () => {
        for (const [frame, expected] of [
          [Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0xff]), 1007],
          [Buffer.from([0xf1, 0x81, 0, 0, 0, 0, 0x61]), 1002],
        ] as const) {
          const c = await open(`${base}/echo`);
          (c.ws as unknown as { _socket: net.Socket })._socket.write(frame);
          const [code] = await c.closed();
          assert.equal(code, expected);
        }
      });

      test('ws.ping-pong: the server pings, and answers the client’s pings', async () => {
        const c = new WebSocket(`${base}/ping`);
        const ping = once(c, 'ping');
        await once(c, 'open');
        assert.equal(String((await ping)[0]), 'hi');
        const pong = once(c, 'pong');
        c.ping('back');
        assert.equal(String((await pong)[0]), 'back');
        c.close();
        await once(c, 'close');
      });

      test('ws.close-codes: the app closes with 4001 and a reason; the client sees both', async () => {
        const c = await open(`${base}/close-4001`);
        assert.deepEqual(await c.closed(), [4001, 'bye']);
        await delay(50);
        assert.equal(seen.closeCodes.at(-1), 4001);
      });

      test('ws.abrupt: a client that vanishes ends the iteration; close() runs once; one 101 record', async () => {
        const closesBefore = seen.closes;
        const recordsBefore = seen.records.length;
        const c = await open(`${base}/echo`);
        c.ws.send('x');
        await c.next();
        c.ws.terminate();
        for (let i = 0; i < 50 && seen.records.length === recordsBefore; i++) await delay(20);
        assert.equal(seen.closes, closesBefore + 1);
        assert.equal(seen.signalAborted.at(-1), true);
        const record = seen.records.at(-1)!;
        assert.equal(record.status, 101);
        assert.equal(record.aborted, false);
        assert.equal(seen.records.length, recordsBefore + 1);
        assert.equal(seen.closeCodes.at(-1), 1006);
      });

      test('ws.refuse: an HTTP answer is sent as is, and closes the connection', async () => {
        const r = await refusal(`${base}/refuse`);
        assert.equal(r.status, 403);
        assert.equal(r.body, 'go away');
        assert.equal(r.headers.connection, 'close');
      });

      test('ws.ignore: an app that ignores the offer answers HTTP', async () => {
        const r = await refusal(`${base}/nowhere`);
        assert.equal(r.status, 404);
        assert.equal(r.body, 'no such socket');
      });

      test('ws.no-key-on-http: an ordinary request has no nsgi.websocket', async () => {
        const res = await fetch(`http://127.0.0.1:${handle.port}${mount}/echo`);
        assert.equal(await res.text(), 'plain http');
        assert.equal(seen.keys.at(-1), false);
      });

      test('ws.protocol-not-offered: accept() with a subprotocol the client did not offer throws', async () => {
        const r = await refusal(`${base}/bad-protocol`);
        assert.equal(r.status, 400);
        assert.equal(seen.errors.at(-1), 'ERR_NSGI_WEBSOCKET_PROTOCOL');
      });

      test('ws.start-after-accept / ws.accept-after-start / ws.accept-twice: each throws its error', async () => {
        const c = await open(`${base}/start-after-accept`);
        await delay(50);
        assert.equal(seen.errors.at(-1), 'ERR_NSGI_START_AFTER_ACCEPT');
        c.ws.close();
        await c.closed();
        const r = await refusal(`${base}/accept-after-start`);
        assert.equal(r.status, 200);
        assert.equal(seen.errors.at(-1), 'ERR_NSGI_ACCEPT_AFTER_START');
        const c2 = await open(`${base}/twice`);
        await c2.closed();
        assert.equal(seen.errors.at(-1), 'ERR_NSGI_ACCEPT_TWICE');
      });

      test('ws.bytes-after-accept: body bytes after accept() close the socket with 1011', async () => {
        const c = await open(`${base}/bytes-after-accept`);
        const [code] = await c.closed();
        assert.equal(code, 1011);
      });

      test('ws.backpressure: a client that stops reading makes send() wait; nothing is lost', async () => {
        const c = await open(`${base}/flood`);
        // Stop reading: the kernel buffers fill, then the server's send buffer.
        (c.ws as unknown as { _socket: net.Socket })._socket.pause();
        await delay(1500);
        (c.ws as unknown as { _socket: net.Socket })._socket.resume();
        let received = 0;
        let m = await c.next();
        while (typeof m !== 'string') {
          received += m.length;
          m = await c.next();
        }
        const report = m;
        const sent = Number(report.split(' ')[1]);
        assert.equal(received, sent, 'every byte sent arrives');
        assert.ok(sent < 16 * 1024 * 1024, `send() stopped resolving after ${sent} bytes, not unbounded`);
        c.ws.close();
        await c.closed();
      });

      test('ws.bad-handshake: no key, a bad key, not GET, HTTP/1.0 → 400; version 8 → 426 naming 13', async () => {
        const path = `${mount}/echo`;
        const reached = seen.keys.length;
        const noKey = await rawExchange(handle.port, handshake(path, 'Sec-WebSocket-Version: 13\r\n'));
        assert.match(noKey, /^HTTP\/1\.1 400 /);
        const badKey = await rawExchange(
          handle.port,
          handshake(path, 'Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n'),
        );
        assert.match(badKey, /^HTTP\/1\.1 400 /);
        const post = await rawExchange(
          handle.port,
          handshake(path, `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n`, 'POST'),
        );
        assert.match(post, /^HTTP\/1\.1 400 /);
        const v8 = await rawExchange(
          handle.port,
          handshake(path, `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 8\r\n`),
        );
        assert.match(v8, /^HTTP\/1\.1 426 /);
        assert.match(v8, /\r\nSec-WebSocket-Version: 13\r\n/i);
        assert.equal(seen.keys.length, reached, 'no bad handshake reached the app');
      });

      if (mount !== '') {
        test('ws.outside-mount: a handshake outside the mount is answered 404 and the connection closes', async () => {
          const out = await rawExchange(
            handle.port,
            handshake('/elsewhere', `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`),
          );
          assert.match(out, /^HTTP\/1\.1 404 /);
          assert.match(out, /\r\nConnection: close\r\n/i);
        });
      }

      test('ws.accept-options: accept() given something other than an options object says how to call it', async () => {
        const r = await refusal(`${base}/accept-string`);
        assert.equal(r.status, 400);
        assert.equal(seen.errors.at(-1), 'ERR_NSGI_WEBSOCKET_ACCEPT');
      });

      test('ws.shutdown: open sockets get 1001 when the server closes', async () => {
        const c = await open(`${base}/echo`);
        const closed = c.closed();
        await handle.close();
        const [code] = await closed;
        assert.equal(code, 1001);
        await start(); // the next cases (and after()) need a server
      });
    });
  }
}

describe('WebSocket through middleware', () => {
  test('ws.router: a router picks the socket’s route; other paths answer HTTP', async () => {
    const chat: App = async (environ, startResponse) => {
      const offer = offerOf(environ);
      if (offer === undefined) {
        startResponse('426 Upgrade Required', [
          ['Upgrade', 'websocket'],
          ['Content-Type', 'text/plain'],
        ]);
        return [Buffer.from('use a WebSocket')];
      }
      const ws: NsgiWebSocket = await offer.accept();
      await ws.send(`room ${(environ['nsgi.route'] as { params: { room: string } }).params.room}`);
      await ws.close();
      return [];
    };
    const handle = await rawFactory(router({ 'GET /chat/:room': chat }), { mount: '' });
    try {
      const c = await open(`ws://127.0.0.1:${handle.port}/chat/lobby`);
      assert.equal(await c.next(), 'room lobby');
      await c.closed();
      const r = await refusal(`ws://127.0.0.1:${handle.port}/elsewhere`);
      assert.equal(r.status, 404);
    } finally {
      await handle.close();
    }
  });

  /** Starts the raw server with `app`, runs `fn` against its ws:// base, and closes it. */
  async function withServer(app: App, fn: (base: string) => Promise<void>, options: Partial<FactoryOptions> = {}) {
    const handle = await rawFactory(app, { mount: '', ...options });
    try {
      await fn(`ws://127.0.0.1:${handle.port}`);
    } finally {
      await handle.close();
    }
  }

  const echo: App = async (environ) => {
    const ws = await offerOf(environ)!.accept();
    for await (const m of ws) await ws.send(m);
    return [];
  };

  test('ws.ip-filter: a refused address is answered 403 before anything is upgraded', async () => {
    await withServer(ipFilter(echo, { deny: ['127.0.0.1'] }), async (base) => {
      const r = await refusal(`${base}/`);
      assert.equal(r.status, 403);
    });
  });

  test('ws.compress-errors: compress and errors leave an accepted socket alone', async () => {
    await withServer(errors(compress(echo)), async (base) => {
      const c = await open(`${base}/`, undefined, { headers: { 'Accept-Encoding': 'gzip' } });
      c.ws.send('through the stack');
      assert.equal(await c.next(), 'through the stack');
      c.ws.close();
      await c.closed();
    });
  });

  test('ws.errors-after-accept: an app error after accept() closes with 1011; no error page is attempted', async () => {
    const failing: App = async (environ) => {
      const ws = await offerOf(environ)!.accept();
      await ws.send('before');
      throw new Error('boom');
    };
    const log: string[] = [];
    await withServer(
      errors(failing),
      async (base) => {
        const c = await open(`${base}/`);
        assert.equal(await c.next(), 'before');
        const [code] = await c.closed();
        assert.equal(code, 1011);
      },
      { errorLog: { write: (s: string) => void log.push(s) } },
    );
    assert.ok(
      log.some((l) => l.includes('boom')),
      'the error is logged',
    );
    assert.ok(!log.some((l) => l.includes('ERR_NSGI_START_AFTER_ACCEPT')), 'errors did not answer in HTTP');
  });

  test('ws.access-log: one 101 line, written when the socket closes, with its lifetime', async () => {
    const lines: string[] = [];
    await withServer(accessLog(echo, { stream: { write: (l: string) => lines.push(l) } }), async (base) => {
      const c = await open(`${base}/room`);
      await delay(120);
      assert.equal(lines.length, 0, 'nothing logged while the socket is open');
      c.ws.close();
      await c.closed();
      for (let i = 0; i < 50 && lines.length === 0; i++) await delay(10);
    });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /"GET \/room HTTP\/1\.1" 101 - ([\d.]+)ms\n$/);
    assert.ok(Number(/ ([\d.]+)ms/.exec(lines[0]!)![1]) >= 100, 'the duration covers the socket’s life');
  });

  test('ws.validate: the websocket.* rules name each misuse', async () => {
    const misuse =
      (what: string): App =>
      async (environ, startResponse) => {
        const offer = offerOf(environ)!;
        if (what === 'accept-after-start') {
          startResponse('200 OK', [['Content-Type', 'text/plain']]);
          await offer.accept().catch(() => {});
          return [Buffer.from('x')];
        }
        if (what === 'protocol') {
          await offer.accept({ protocol: 'nope' }).catch(() => {});
          startResponse('400 Bad Request', [['Content-Type', 'text/plain']]);
          return [Buffer.from('x')];
        }
        await offer.accept();
        if (what === 'accept-twice') await offer.accept().catch(() => {});
        if (what === 'start-after-accept') {
          try {
            startResponse('200 OK', [['Content-Type', 'text/plain']]);
          } catch {
            // the core refuses it too
          }
        }
        if (what === 'body-after-accept') return [Buffer.from('bytes')];
        return [];
      };
    for (const rule of ['accept-twice', 'accept-after-start', 'protocol', 'start-after-accept', 'body-after-accept']) {
      const found: LintError[] = [];
      await withServer(
        validate(misuse(rule), { onViolation: (e) => found.push(e) }),
        async (base) => {
          const ws = new WebSocket(`${base}/`);
          ws.on('error', () => {});
          await Promise.race([new Promise((r) => ws.once('close', r)), delay(2000)]);
          ws.terminate();
        },
        { errorLog: { write: () => {} } }, // the core reports the misuse too
      );
      assert.deepEqual(
        found.map((e) => e.rule),
        [`websocket.${rule}`],
        `${rule}: ${found.map((e) => e.message).join('; ')}`,
      );
    }
  });

  test('ws.validate-clean: a correct socket app passes validate with no violation', async () => {
    const found: LintError[] = [];
    await withServer(validate(echo, { onViolation: (e) => found.push(e) }), async (base) => {
      const c = await open(`${base}/`);
      c.ws.send('ok');
      assert.equal(await c.next(), 'ok');
      c.ws.close();
      await c.closed();
    });
    assert.deepEqual(found, []);
  });

  test('ws.idle-ping: a peer that stops answering pings is dropped', async () => {
    const codes: Array<number | undefined> = [];
    const watcher: App = async (environ) => {
      const ws = await offerOf(environ)!.accept();
      for await (const m of ws) void m;
      codes.push(ws.closeCode);
      return [];
    };
    await withServer(
      watcher,
      async (base) => {
        const answering = await open(`${base}/`);
        const silent = new WebSocket(`${base}/`, { autoPong: false });
        await once(silent, 'open');
        const [code] = (await once(silent, 'close')) as [number];
        assert.equal(code, 1006, 'the silent peer was dropped');
        assert.equal(answering.ws.readyState, WebSocket.OPEN, 'the peer that answers stays');
        answering.ws.close();
        await answering.closed();
      },
      { websocket: { pingInterval: 100 } },
    );
    assert.ok(codes.includes(1006));
  });

  test('ws.deflate: permessage-deflate is off by default and negotiated when enabled', async () => {
    await withServer(echo, async (base) => {
      const c = await open(`${base}/`);
      assert.equal(c.ws.extensions, '');
      c.ws.close();
      await c.closed();
    });
    await withServer(
      echo,
      async (base) => {
        const c = await open(`${base}/`);
        assert.match(c.ws.extensions, /permessage-deflate/);
        c.ws.send('x'.repeat(10_000));
        assert.equal(await c.next(), 'x'.repeat(10_000));
        c.ws.close();
        await c.closed();
      },
      { websocket: { perMessageDeflate: true } },
    );
  });

  test('ws.options: a bad websocket option is refused at creation, naming it', async () => {
    await assert.rejects(
      rawFactory(echo, { mount: '', websocket: { maxPayload: -1 } }),
      /websocket\.maxPayload must be a number >= 1/,
    );
    await assert.rejects(
      rawFactory(echo, { mount: '', websocket: { perMessageDeflate: 'yes' as never } }),
      /websocket\.perMessageDeflate must be true, false or ws's options object, got/,
    );
  });

  test('ws.express-auth: Express middleware runs before the upgrade and its 401 refuses it', async () => {
    const web = express();
    web.use((req, res, next) => {
      if (req.headers.authorization !== 'Bearer ok') res.status(401).send('who are you');
      else next();
    });
    web.use('/ws', toExpress(echo));
    const server = http.createServer(web);
    server.on('upgrade', expressUpgrade(web));
    const handle = await listening(server);
    try {
      const r = await refusal(`ws://127.0.0.1:${handle.port}/ws/`);
      assert.equal(r.status, 401);
      assert.equal(r.body, 'who are you');
      assert.equal(r.headers.connection, 'close');
      const c = await open(`ws://127.0.0.1:${handle.port}/ws/`, undefined, { headers: { Authorization: 'Bearer ok' } });
      c.ws.send('in');
      assert.equal(await c.next(), 'in');
      c.ws.close();
      await c.closed();
    } finally {
      await handle.close();
    }
  });

  for (const withPlugin of [false, true]) {
    test(`ws.fastify-hooks: onRequest auth runs first${withPlugin ? ', beside @fastify/websocket routes' : ''}`, async () => {
      const fastify = Fastify();
      if (withPlugin) await fastify.register(fastifyWebsocket);
      fastify.addHook('onRequest', async (request, reply) => {
        if (request.headers.authorization !== 'Bearer ok') await reply.code(401).send('who are you');
      });
      await fastify.register(nsgiPlugin, { app: echo, prefix: '/nsgi' });
      if (withPlugin) {
        fastify.get('/native', { websocket: true }, (socket) => {
          socket.send('native route');
          socket.close();
        });
      }
      await fastify.listen({ port: 0, host: '127.0.0.1' });
      const base = `ws://127.0.0.1:${(fastify.server.address() as net.AddressInfo).port}`;
      const auth = { headers: { Authorization: 'Bearer ok' } };
      try {
        const r = await refusal(`${base}/nsgi/`);
        assert.equal(r.status, 401);
        const c = await open(`${base}/nsgi/`, undefined, auth);
        c.ws.send('through fastify');
        assert.equal(await c.next(), 'through fastify');
        c.ws.close();
        await c.closed();
        if (withPlugin) {
          const n = await open(`${base}/native`, undefined, auth);
          assert.equal(await n.next(), 'native route');
          await n.closed();
        }
      } finally {
        await fastify.close();
      }
    });
  }

  // An open socket lives as long as its client likes: it must not keep the HTTP exchange it came from.
  const hostsSeeingRequests: Array<
    [string, (app: App, seen: (req: http.IncomingMessage) => void) => Promise<ServerHandle>]
  > = [
    [
      'node:http',
      async (app, seen) => {
        const listener = toNodeListener(app);
        const server = http.createServer(listener);
        server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
          seen(req);
          listener.upgrade(req, socket, head);
        });
        const handle = await listening(server);
        return { port: handle.port, close: () => listener.gateway.closeWebSockets(0).then(() => handle.close()) };
      },
    ],
    [
      'Express',
      async (app, seen) => {
        const middleware = toExpress(app);
        const expressApp = express();
        expressApp.use((req, _res, next) => {
          seen(req);
          next();
        });
        expressApp.use(middleware);
        const server = http.createServer(expressApp);
        server.on('upgrade', expressUpgrade(expressApp));
        const handle = await listening(server);
        return { port: handle.port, close: () => middleware.gateway.closeWebSockets(0).then(() => handle.close()) };
      },
    ],
    [
      'Fastify',
      async (app, seen) => {
        const fastify = Fastify();
        fastify.addHook('onRequest', (request, _reply, done) => {
          seen(request.raw);
          done();
        });
        await fastify.register(nsgiPlugin, { app, shutdownGrace: 0 });
        await fastify.listen({ port: 0, host: '127.0.0.1' });
        return { port: (fastify.server.address() as net.AddressInfo).port, close: () => fastify.close() };
      },
    ],
  ];
  for (const [host, serve] of hostsSeeingRequests) {
    test(`ws.releases-request: an open socket on ${host} keeps neither the request nor the response`, async () => {
      let request: WeakRef<http.IncomingMessage> | undefined;
      const handle = await serve(echo, (req) => (request = new WeakRef(req)));
      try {
        const c = await open(`ws://127.0.0.1:${handle.port}/`);
        c.ws.send('open');
        assert.equal(await c.next(), 'open');
        assert.ok(request !== undefined, 'the host saw the handshake');
        for (let i = 0; i < 5 && request.deref() !== undefined; i++) {
          await delay(10);
          collectGarbage();
        }
        assert.equal(
          request.deref(),
          undefined,
          'the IncomingMessage (and the ServerResponse, which holds it) was collected',
        );
        c.ws.send('still open');
        assert.equal(await c.next(), 'still open');
        c.ws.close();
        await c.closed();
      } finally {
        await handle.close();
      }
    });
  }

  test('ws.node-one-liner: a node:http server of your own takes upgrades through listener.upgrade', async () => {
    const listener = toNodeListener(echo);
    const server = http.createServer(listener);
    server.on('upgrade', listener.upgrade);
    const handle = await listening(server);
    try {
      const c = await open(`ws://127.0.0.1:${handle.port}/`);
      c.ws.send('own server');
      assert.equal(await c.next(), 'own server');
      c.ws.close();
      await c.closed();
    } finally {
      await listener.gateway.closeWebSockets(0);
      await handle.close();
    }
  });
});
