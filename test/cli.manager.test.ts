/**
 * `nsgi serve` processes: lifespan hooks, the process manager's signals, hung-worker timeout,
 * max-requests retirement and crash-loop backoff, and --reload.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ENV_APP, freePort, get, load, run, seen, serve, stop, waitFor, type Run } from './helpers/cli.js';
import { sleep } from './helpers/raw-http.js';

const tmp = mkdtempSync(join(tmpdir(), 'nsgi-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Sends `s` SIGHUP `times` times, each after `before(i)`, while eight clients send requests on new
 * connections; resolves with what they saw once the last reload is done.
 */
async function reloadUnderLoad(
  s: Run & { url: string },
  times: number,
  before: (i: number) => void = () => {},
): Promise<Awaited<ReturnType<typeof load>>> {
  let settled!: () => void;
  const traffic = load(s.url, 8, new Promise<void>((r) => (settled = r)));
  try {
    for (let i = 1; i <= times; i++) {
      await sleep(300);
      before(i);
      s.child.kill('SIGHUP');
      await waitFor(s, new RegExp(`(reload done[\\s\\S]*){${i}}`), 60000);
    }
    await sleep(500);
  } finally {
    settled();
  }
  return traffic;
}

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
  it('SIGHUP reloads the workers one by one under load: no failed request over three reloads, and the answers switch to the new code', async () => {
    const dir = mkdtempSync(join(tmp, 'reload-'));
    const file = join(dir, 'app.mjs');
    const version = (v: string) =>
      writeFileSync(
        file,
        `export default (e, sr) => { sr('200 OK', [['Content-Type', 'text/plain']]); return [Buffer.from('${v}')]; };\n`,
      );
    version('v1');
    const s = await serve([file, '--workers', '2', '--no-access-log', '--graceful-timeout', '5']);
    try {
      assert.equal((await get(s.url)).text, 'v1');
      // Three reloads: a connection lost while a worker hands over is rare.
      const { sent, failed, bodies } = await reloadUnderLoad(s, 3, (i) => version(i < 3 ? `v1.${i}` : 'v2'));
      assert.deepEqual(failed, [], `${failed.length} of ${sent} failed`);
      assert.ok(bodies.includes('v1') && bodies.includes('v2'), 'answers from both versions');
      assert.equal(bodies.at(-1), 'v2');
      for (let i = 0; i < 10; i++) assert.equal((await get(s.url)).text, 'v2');
      assert.match(s.stderr(), /SIGHUP: reloading 2 workers one by one/);
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('SIGHUP under load on --server fastify: no request answered 503 by a closing worker', async () => {
    const dir = mkdtempSync(join(tmp, 'reload-fastify-'));
    const file = join(dir, 'app.mjs');
    writeFileSync(file, `export default (e, sr) => { sr('200 OK', []); return [Buffer.from('ok')]; };\n`);
    const args = [file, '--server', 'fastify', '--workers', '2', '--no-access-log', '--graceful-timeout', '5'];
    const s = await serve(args);
    try {
      const { sent, failed } = await reloadUnderLoad(s, 1);
      assert.deepEqual(failed, [], `${failed.length} of ${sent} failed`);
    } finally {
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
      // Two workers serve again, once the replacement has booted.
      const pids = new Set<number>();
      for (const deadline = Date.now() + 20_000; pids.size < 2 && Date.now() < deadline;) {
        pids.add((await seen(s.url)).pid);
        await sleep(20);
      }
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
