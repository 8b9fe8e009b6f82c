/**
 * `nsgi serve` for production, on real processes: every server option from the command line and
 * NSGI_* variables, unix sockets and inherited descriptors (systemd), the health path, PROXY
 * protocol, lifespan hooks, and the process manager's signals, hung-worker timeout, max-requests
 * retirement, crash-loop backoff and --reload.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, run, serve, stop, waitFor } from './helpers/cli.js';
import { rawRequest, sleep } from './helpers/raw-http.js';

const ENV_APP = 'test/fixtures/apps/env.mjs';

interface Seen {
  pid: number;
  remote: string;
  scheme: string;
  path: string;
  size: number;
  proxy: { version: number; command: string } | null;
}

/** One GET on a new connection (so that the kernel spreads them over the workers). */
async function get(
  url: string,
  headers: Record<string, string> = {},
  timeout = 5000,
): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { headers: { Connection: 'close', ...headers }, signal: AbortSignal.timeout(timeout) });
  return { status: res.status, text: await res.text() };
}

async function seen(url: string, headers?: Record<string, string>): Promise<Seen> {
  const r = await get(url, headers);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text) as Seen;
}

/**
 * Sends requests from `concurrency` loops until `until()` resolves; counts answers by body and the
 * failures (a refused or reset connection, or a status other than 200).
 */
async function load(
  url: string,
  concurrency: number,
  until: Promise<unknown>,
): Promise<{ sent: number; failed: string[]; bodies: string[] }> {
  let done = false;
  void until.then(() => (done = true));
  const failed: string[] = [];
  const bodies: string[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!done) {
        sent++;
        try {
          const r = await get(url);
          if (r.status !== 200) failed.push(`status ${r.status}: ${r.text}`);
          else bodies.push(r.text);
        } catch (err) {
          failed.push(String((err as Error).cause ?? err));
        }
      }
    }),
  );
  return { sent, failed, bodies };
}

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

describe('nsgi serve: lifespan hooks', () => {
  it('runs startup() before serving and shutdown() after draining, in one process and in each worker', async () => {
    for (const workers of [[], ['--workers', '2']]) {
      const s = await serve(['test/fixtures/apps/lifespan.mjs', ...workers]);
      if (workers.length > 0) await waitFor(s, /startup \d+[\s\S]*startup \d+/);
      assert.equal((await get(s.url)).text, 'started');
      assert.equal(await stop(s), 0);
      const out = s.stdout();
      const starts = out.match(/lifespan: startup \d+/g) ?? [];
      const ends = out.match(/lifespan: shutdown \d+/g) ?? [];
      assert.equal(starts.length, workers.length === 0 ? 1 : 2, out);
      assert.equal(ends.length, starts.length, out);
      assert.ok(out.indexOf('lifespan: startup') < out.indexOf('serving'), 'startup before the server listens');
    }
  });

  it('a failing startup() stops the process with its error; under --workers the manager backs off, then gives up', async () => {
    const env = { ...process.env, LIFESPAN_FAIL: 'startup' };
    const one = run(['serve', 'test/fixtures/apps/lifespan.mjs', '--port', '0'], { env });
    assert.equal(await one.exit, 1);
    assert.match(one.stderr(), /startup\(\) of .*lifespan\.mjs failed: Error: the database is not there/);
    const many = run(['serve', 'test/fixtures/apps/lifespan.mjs', '--port', '0', '--workers', '2'], { env });
    assert.equal(await many.exit, 1);
    const err = many.stderr();
    assert.match(err, /died while starting \(exit code 1\); starting another in 250 ms/);
    assert.match(err, /starting another in 500 ms/);
    assert.match(err, /5 workers in a row died before they could serve; giving up/);
  });
});

describe('nsgi serve --workers: the process manager', () => {
  it('SIGHUP reloads the workers one by one under load: no failed request, and the answers switch to the new code', async () => {
    const dir = mkdtempSync(join(tmp, 'reload-'));
    const file = join(dir, 'app.mjs');
    const version = (v: string) =>
      writeFileSync(
        file,
        `export default (e, sr) => { sr('200 OK', [['Content-Type', 'text/plain']]); return [Buffer.from('${v}')]; };\n`,
      );
    version('v1');
    const s = await serve([file, '--workers', '2', '--no-access-log', '--graceful-timeout', '5']);
    let settled!: () => void;
    const reloaded = new Promise<void>((r) => (settled = r));
    try {
      assert.equal((await get(s.url)).text, 'v1');
      const traffic = load(s.url, 4, reloaded);
      await sleep(300);
      version('v2');
      s.child.kill('SIGHUP');
      await waitFor(s, /reload done/, 60000);
      await sleep(500);
      settled();
      const { sent, failed, bodies } = await traffic;
      assert.deepEqual(failed, [], `${failed.length} of ${sent} failed`);
      assert.ok(bodies.includes('v1') && bodies.includes('v2'), 'answers from both versions');
      assert.equal(bodies.at(-1), 'v2');
      for (let i = 0; i < 10; i++) assert.equal((await get(s.url)).text, 'v2');
      assert.match(s.stderr(), /SIGHUP: reloading 2 workers one by one/);
    } finally {
      settled();
      assert.equal(await stop(s), 0);
    }
  });

  it('a reload whose new worker cannot start stops, and the old workers keep serving', async () => {
    const dir = mkdtempSync(join(tmp, 'badreload-'));
    const file = join(dir, 'app.mjs');
    writeFileSync(file, `export default (e, sr) => { sr('200 OK', []); return [Buffer.from('old')]; };\n`);
    const s = await serve([file, '--workers', '2', '--no-access-log']);
    try {
      writeFileSync(file, 'export default (e, sr) => { this is not javascript');
      s.child.kill('SIGHUP');
      await waitFor(s, /reload stopped: a new worker did not start/, 30000);
      for (let i = 0; i < 10; i++) assert.equal((await get(s.url)).text, 'old');
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('a hung worker is killed within --timeout + 1 s, the log names it and its request, and the others keep answering', async () => {
    const s = await serve([ENV_APP, '--workers', '2', '--timeout', '2', '--no-access-log']);
    try {
      const hang = fetch(`${s.url}/hang`, { headers: { Connection: 'close' } }).catch(() => 'dropped');
      const t0 = Date.now();
      // The others answer meanwhile. (node:cluster may already have handed the hung worker one more
      // connection, which waits: hence the short timeout.)
      let answered = 0;
      let watching = true;
      const others = (async () => {
        while (watching) {
          const r = await get(s.url, {}, 1000).catch(() => undefined);
          if (r?.status === 200) answered++;
          await sleep(50);
        }
      })();
      await waitFor(s, /sent no heartbeat/, 10_000);
      const killedAfter = Date.now() - t0;
      await sleep(500);
      watching = false;
      await others;
      assert.ok(killedAfter <= 3000, `killed after ${killedAfter} ms`);
      assert.ok(answered >= 5, `${answered} answers while one worker hung`);
      assert.match(
        s.stderr(),
        /worker \d+ sent no heartbeat for \d+\.\d s \(--timeout 2\); killing it \(in flight: GET \/hang \(for [\d.]+ s\)\)/,
      );
      assert.equal(await hang, 'dropped');
      // Two workers serve again.
      const pids = new Set<number>();
      for (let i = 0; i < 40 && pids.size < 2; i++) pids.add((await seen(s.url)).pid);
      assert.equal(pids.size, 2);
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('--max-requests retires workers without a failed request', async () => {
    const s = await serve([
      ENV_APP,
      '--workers',
      '1',
      '--max-requests',
      '30',
      '--max-requests-jitter',
      '5',
      '--no-access-log',
    ]);
    try {
      // Until three workers have served in turn (each replacement boots before its predecessor retires).
      const pids = new Set<number>();
      const failures: string[] = [];
      let sent = 0;
      for (const deadline = Date.now() + 30_000; pids.size < 3 && Date.now() < deadline; sent++) {
        try {
          pids.add((await seen(s.url)).pid);
        } catch (err) {
          failures.push(String(err));
        }
      }
      assert.deepEqual(failures, [], `${failures.length} of ${sent} failed`);
      assert.ok(pids.size >= 3, `${pids.size} workers served ${sent} requests`);
      assert.match(s.stderr(), /served 3\d requests \(--max-requests\); stopping it gracefully/);
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('SIGTTIN adds a worker and SIGTTOU removes one', async () => {
    const s = await serve([ENV_APP, '--workers', '1', '--no-access-log']);
    const pidsOver = async (n: number) => {
      const pids = new Set<number>();
      for (let i = 0; i < n; i++) pids.add((await seen(s.url)).pid);
      return pids;
    };
    try {
      assert.equal((await pidsOver(10)).size, 1);
      s.child.kill('SIGTTIN');
      await waitFor(s, /SIGTTIN: 2 workers/);
      let two = new Set<number>();
      for (let i = 0; i < 20 && two.size < 2; i++) {
        await sleep(200);
        two = await pidsOver(20);
      }
      assert.equal(two.size, 2);
      s.child.kill('SIGTTOU');
      await waitFor(s, /is one too many \(SIGTTOU\); stopping it gracefully/);
      await sleep(500);
      assert.equal((await pidsOver(20)).size, 1);
      s.child.kill('SIGTTOU');
      await waitFor(s, /SIGTTOU: one worker is the least; keeping it/);
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('SIGINT stops at once: a request in flight is dropped', async () => {
    const s = await serve([ENV_APP, '--workers', '1', '--no-access-log']);
    const slow = fetch(`${s.url}/slow?3000`).then(
      (r) => r.status,
      () => 'dropped',
    );
    await sleep(300);
    const t0 = Date.now();
    s.child.kill('SIGINT');
    assert.equal(await s.exit, 0);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(await slow, 'dropped');
  });
});

describe('nsgi serve --reload', () => {
  it('restarts on a change to the app file', async () => {
    const dir = mkdtempSync(join(tmp, 'dev-'));
    const file = join(dir, 'app.mjs');
    copyFileSync('test/fixtures/apps/pid.mjs', file);
    const port = await freePort();
    const s = run(['serve', file, '--reload', '--no-access-log', '--port', String(port)]);
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(s, /serving/);
      const first = (await get(url)).text;
      writeFileSync(file, readFileSync(file, 'utf8').replace("${environ['wsgi.multiprocess']}", 'reloaded'));
      await waitFor(s, /app\.mjs changed; restarting/);
      let text = first;
      for (let i = 0; i < 100 && !text.endsWith('reloaded'); i++) {
        await sleep(100);
        text = await get(url).then(
          (r) => r.text,
          () => text,
        );
      }
      assert.match(text, /^\d+ reloaded$/);
      assert.notEqual(text.split(' ')[0], first.split(' ')[0], 'a new process');
    } finally {
      assert.equal(await stop(s), 0);
    }
  });
});
