/**
 * `nsgi serve` on real processes: limits on node, express and fastify, trusted proxies, unix
 * sockets, inherited descriptors (systemd), the health path with its drain, and PROXY protocol.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ENV_APP, get, run, seen, serve, stop, waitFor, type Seen } from './helpers/cli.js';
import { connect, rawRequest, readUntil, sleep } from './helpers/raw-http.js';

const tmp = mkdtempSync(join(tmpdir(), 'nsgi-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('nsgi serve: hosts, proxies and sockets', () => {
  for (const server of ['node', 'express', 'fastify']) {
    it(`--server ${server}: body and target limits, the header timeout and the health path`, async () => {
      const s = await serve([
        ENV_APP,
        '--server',
        server,
        '--max-body-size',
        '10',
        '--max-request-target',
        '40',
        '--header-timeout',
        '1',
        '--max-header-size',
        '1kb',
        '--health-path',
        '/healthz',
        '--mount',
        '/app',
      ]);
      try {
        assert.equal((await fetch(`${s.url}/app/`, { method: 'POST', body: 'x'.repeat(11) })).status, 413);
        assert.equal((await get(`${s.url}/app/${'a'.repeat(50)}`)).status, 414);
        assert.deepEqual(await get(`${s.url}/healthz`), { status: 200, text: 'OK\n' });
        assert.equal((await get(`${s.url}/app/`, { 'X-Big': 'x'.repeat(2000) })).status, 431);
        const port = Number(new URL(s.url).port);
        const t0 = Date.now();
        await rawRequest(port, 'GET /app/ HTTP/1.1\r\nHost: a\r\n', { waitForClose: true, timeout: 5000 });
        assert.ok(Date.now() - t0 < 4000, `closed after ${Date.now() - t0} ms`);
      } finally {
        await stop(s);
      }
    });
  }
  it('trusts X-Forwarded-For from loopback by default, and only from --forwarded-allow-ips when given', async () => {
    const s = await serve([ENV_APP]);
    const t = await serve([ENV_APP, '--forwarded-allow-ips', '10.0.0.1']);
    try {
      const fwd = { 'X-Forwarded-For': '203.0.113.5', 'X-Forwarded-Proto': 'https' };
      assert.deepEqual([(await seen(s.url, fwd)).remote, (await seen(s.url, fwd)).scheme], ['203.0.113.5', 'https']);
      assert.deepEqual([(await seen(t.url, fwd)).remote, (await seen(t.url, fwd)).scheme], ['127.0.0.1', 'http']);
    } finally {
      await Promise.all([stop(s), stop(t)]);
    }
  });

  it('--uds listens on a unix socket', async () => {
    const path = join(tmp, 'nsgi.sock');
    const s = run(['serve', ENV_APP, '--uds', path]);
    await waitFor(s, new RegExp(`at unix:${path.replace(/[.]/g, '\\.')}`));
    try {
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get({ socketPath: path, path: '/uds', headers: { Host: 'x' } }, (res) => {
            let text = '';
            res.on('data', (d) => (text += d));
            res.on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      assert.equal((JSON.parse(body) as Seen).path, '/uds');
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('serves on an inherited descriptor the way systemd starts it (fd 3, LISTEN_FDS=1, LISTEN_PID), and with --workers', async () => {
    for (const workers of [[], ['--workers', '2']]) {
      const listener = net.createServer();
      await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
      const port = (listener.address() as net.AddressInfo).port;
      const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
      const s = run(['serve', ENV_APP, ...workers], {
        env: { ...process.env, LISTEN_FDS: '1' },
        extraFds: [fd],
        listenPid: true,
      });
      try {
        await waitFor(s, new RegExp(`at http://127\\.0\\.0\\.1:${port}/`));
        listener.close(); // the server's process holds its own copy
        assert.equal((await seen(`http://127.0.0.1:${port}/fd`)).path, '/fd');
      } finally {
        assert.equal(await stop(s), 0, s.stderr());
      }
    }
  });

  it('LISTEN_FDS meant for another process (LISTEN_PID not ours) is ignored', async () => {
    const s = await serve([ENV_APP], { env: { ...process.env, LISTEN_FDS: '1', LISTEN_PID: '1' } });
    try {
      assert.equal((await seen(s.url)).path, '/');
    } finally {
      await stop(s);
    }
  });
});
describe('nsgi serve: health path and draining', () => {
  it('answers 200 without the app, then 503 (connection closed) for --drain-delay while requests are still served, then stops', async () => {
    const s = await serve([ENV_APP, '--health-path', '/healthz', '--drain-delay', '1.5']);
    try {
      const h = await fetch(`${s.url}/healthz`);
      assert.equal(h.status, 200);
      assert.equal(h.headers.get('cache-control'), 'no-store');
      assert.equal(await h.text(), 'OK\n');
      assert.equal((await get(`${s.url}/healthz?full=1`)).status, 200);
      s.child.kill('SIGTERM');
      await waitFor(s, /SIGTERM received/);
      const during = await fetch(`${s.url}/healthz`);
      assert.equal(during.status, 503);
      assert.equal(during.headers.get('connection'), 'close');
      assert.equal((await seen(s.url)).path, '/', 'the app is still served while draining');
      assert.equal(await s.exit, 0);
      assert.match(s.stdout(), /"GET \/healthz HTTP\/1\.1" 503 /);
    } finally {
      s.child.kill('SIGKILL');
    }
  });
  for (const server of ['raw', 'node', 'express', 'fastify']) {
    it(`--server ${server}: on SIGTERM an idle keep-alive connection is closed, one that has sent nothing yet is still answered`, async () => {
      const s = await serve([ENV_APP, '--server', server, '--no-access-log']);
      const port = Number(new URL(s.url).port);
      const used = await connect(port);
      const fresh = await connect(port);
      try {
        const first = readUntil(used, (t) => t.includes('"pid"'));
        used.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
        await first;
        const usedClosed = new Promise((r) => used.once('close', r));
        const answer = readUntil(fresh, (t) => t.includes('"pid"'), 5000);
        await sleep(100); // the server has seen `fresh` connect
        s.child.kill('SIGTERM');
        await waitFor(s, /SIGTERM received/);
        await usedClosed;
        await sleep(1000);
        fresh.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
        assert.match(await answer, /^HTTP\/1\.1 200 OK\r\n(?:[^\r\n]*\r\n)*?connection: close\r\n/i);
        assert.equal(await s.exit, 0);
      } finally {
        used.destroy();
        fresh.destroy();
        s.child.kill('SIGKILL');
      }
    });
  }
});
describe('nsgi serve: PROXY protocol', () => {
  it('--proxy-protocol v2 takes the client address from the header; a header from elsewhere is refused and logged', async () => {
    const s = await serve([ENV_APP, '--proxy-protocol', 'v1']);
    const t = await serve([ENV_APP, '--proxy-protocol', 'v1', '--proxy-allow-from', '10.0.0.0/8']);
    try {
      const GET = 'GET /p HTTP/1.1\r\nHost: a\r\n\r\n';
      const r = await rawRequest(Number(new URL(s.url).port), `PROXY TCP4 198.51.100.4 10.0.0.1 4000 80\r\n${GET}`);
      const body = JSON.parse(r.responses[0]!.body.toString()) as Seen;
      assert.deepEqual([body.remote, body.proxy], ['198.51.100.4', { version: 1, command: 'PROXY' }]);
      const refused = await rawRequest(
        Number(new URL(t.url).port),
        `PROXY TCP4 198.51.100.4 10.0.0.1 4000 80\r\n${GET}`,
        {
          waitForClose: true,
        },
      );
      assert.equal(refused.text, '');
      await waitFor(
        t,
        /PROXY protocol: connection from 127\.0\.0\.1:\d+ closed: a PROXY header from an address not in proxyAllowFrom/,
      );
    } finally {
      await Promise.all([stop(s), stop(t)]);
    }
  });
});
