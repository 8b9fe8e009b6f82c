/**
 * `nsgi serve` options on real processes: refused values, NSGI_* variables, and the limits and
 * timeouts reaching the bundled server.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ENV_APP, get, run, seen, serve, stop, waitFor } from './helpers/cli.js';
import { connect, rawRequest, readUntil, sleep } from './helpers/raw-http.js';

const tmp = mkdtempSync(join(tmpdir(), 'nsgi-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('nsgi serve: options from the command line and the environment', () => {
  const refusals: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [
      ['--max-body-size', '10x'],
      {},
      /--max-body-size must be a size in bytes, e\.g\. 1048576, 512kb or 10mb; got "10x"/,
    ],
    [['--header-timeout', '0'], {}, /--header-timeout must be a number of seconds above 0/],
    [['--timeout', '5'], {}, /--timeout needs --workers <n>/],
    [['--max-requests', '100'], {}, /--max-requests needs --workers <n>/],
    [['--reload', '--workers', '2'], {}, /--reload is for development .* leave out --workers/],
    [['--proxy-protocol', 'v2', '--server', 'node'], {}, /--proxy-protocol is an option of --server raw/],
    [['--proxy-protocol', 'v9'], {}, /--proxy-protocol must be off, v1, v2 or auto; got "v9"/],
    [['--proxy-allow-from', '10.0.0.0/8'], {}, /--proxy-allow-from needs --proxy-protocol v1, v2 or auto/],
    [['--send-timeout', '5', '--server', 'fastify'], {}, /--send-timeout is an option of --server raw/],
    [
      ['--header-timeout', '5', '--server', 'fastify', '--http2'],
      {},
      /--header-timeout is not applied to HTTP\/2 on --server fastify/,
    ],
    [['--uds', '/tmp/x.sock', '--port', '80'], {}, /give one of --port, --uds and --fd, not --uds and --port/],
    [['--fd', '3', '--host', '0.0.0.0'], {}, /--host is for --port; --fd listens where its socket is/],
    [['--forwarded-allow-ips', 'not-an-ip'], {}, /--forwarded-allow-ips: .*give addresses and CIDR ranges/],
    [
      ['--health-path', 'healthz'],
      {},
      /--health-path must be a path starting with \/, e\.g\. \/healthz; got "healthz"/,
    ],
    [[], { NSGI_WORKERS: 'many' }, /NSGI_WORKERS must be a whole number of processes from 1 to 1024, got many/],
    [[], { NSGI_HTTP2: 'perhaps' }, /NSGI_HTTP2 is a switch: give 1 or 0/],
    [['--graceful-timeout=-1'], {}, /--graceful-timeout must be a number of seconds/],
  ];
  for (const [args, env, message] of refusals) {
    it(`refuses ${[...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args].join(' ')}, naming the fix`, async () => {
      const r = run(['serve', ENV_APP, ...args], { env: { ...process.env, ...env } });
      assert.equal(await r.exit, 2, r.stderr());
      assert.match(r.stderr(), message);
    });
  }

  it('takes every option from NSGI_* variables, the app from NSGI_APP; a flag beats its variable', async () => {
    const s = run(['serve', '--port', '0'], {
      env: {
        ...process.env,
        NSGI_APP: ENV_APP,
        NSGI_PORT: '1',
        NSGI_HEALTH_PATH: '/healthz',
        NSGI_NO_ACCESS_LOG: '1',
        NSGI_MAX_BODY_SIZE: '1kb',
      },
    });
    const url = (await waitFor(s, /at (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    try {
      assert.deepEqual(await get(`${url}/healthz`), { status: 200, text: 'OK\n' });
      const big = await fetch(url, { method: 'POST', body: 'x'.repeat(2000) });
      assert.equal(big.status, 413);
      assert.equal((await seen(url)).path, '/');
      assert.doesNotMatch(s.stdout(), /"GET \//, 'NSGI_NO_ACCESS_LOG=1');
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('limits and timeouts reach the bundled server', async () => {
    const s = await serve([
      ENV_APP,
      '--max-body-size',
      '10',
      '--max-request-target',
      '40',
      '--header-timeout',
      '0.5',
      '--max-header-count',
      '12',
    ]);
    try {
      const port = Number(new URL(s.url).port);
      assert.equal((await fetch(s.url, { method: 'POST', body: 'x'.repeat(11) })).status, 413);
      assert.equal((await get(`${s.url}/${'a'.repeat(50)}`)).status, 414);
      const fields = Array.from({ length: 12 }, (_, i) => `X-${i}: ${i}\r\n`).join('');
      const many = await rawRequest(port, `GET / HTTP/1.1\r\nHost: a\r\n${fields}\r\n`);
      assert.equal(many.responses[0]?.status, 431);
      const t0 = Date.now();
      const slow = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\n', { waitForClose: true, timeout: 5000 });
      assert.equal(slow.responses[0]?.status, 408);
      assert.ok(Date.now() - t0 < 2500, `closed after ${Date.now() - t0} ms`);
    } finally {
      await stop(s);
    }
  });

  it('keep-alive and request timeouts, the header size and the connection count reach the bundled server', async () => {
    const s = await serve([
      ENV_APP,
      '--keep-alive-timeout',
      '0.5',
      '--request-timeout',
      '0.5',
      '--max-header-size',
      '1kb',
      '--max-connections',
      '2',
    ]);
    try {
      const port = Number(new URL(s.url).port);
      // Idle after a response: closed after the keep-alive timeout.
      const idle = await connect(port);
      idle.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      await readUntil(idle, (t) => t.includes('"pid"'));
      let t0 = Date.now();
      await once(idle, 'close');
      assert.ok(Date.now() - t0 < 2000, `idle closed after ${Date.now() - t0} ms`);
      // A body that stops coming: 408 after the request timeout.
      t0 = Date.now();
      const body = await rawRequest(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab', {
        waitForClose: true,
      });
      assert.equal(body.responses[0]?.status, 408);
      assert.ok(Date.now() - t0 < 2000, `408 after ${Date.now() - t0} ms`);
      const big = await rawRequest(port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(1100)}\r\n\r\n`);
      assert.equal(big.responses[0]?.status, 431);
      // Two connections at most: a third is closed on arrival.
      const [a, b] = [await connect(port), await connect(port)];
      await sleep(100);
      const third = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { waitForClose: true, timeout: 2000 });
      assert.deepEqual([third.closed, third.responses.length], [true, 0]);
      a.destroy();
      b.destroy();
    } finally {
      await stop(s);
    }
  });

  it('--send-timeout cuts off a client that leaves a response unread', async () => {
    const s = await serve([ENV_APP, '--send-timeout', '0.5', '--no-access-log']);
    try {
      const sock = await connect(Number(new URL(s.url).port));
      sock.pause(); // reads nothing: the server's writes back up
      sock.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
      await sleep(2000);
      // Then it reads what was sent before the cut: the response ends short of its 16 MiB.
      let received = 0;
      sock.on('data', (d: Buffer) => (received += d.length));
      sock.on('error', () => {});
      sock.resume();
      await once(sock, 'close');
      assert.ok(received < 16 * 1024 * 1024, `received ${received} bytes`);
    } finally {
      await stop(s);
    }
  });
});
