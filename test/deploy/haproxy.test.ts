/**
 * HAProxy (Debian package `haproxy`) in front of three `nsgi serve` instances, with the config in
 * deploy/haproxy.cfg as is: PROXY protocol v2, health checks on /healthz. Under a steady load from
 * another loopback address, the instances are restarted one after another; no request may fail,
 * and every app sees the client's address.
 */

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { freePort, root, run, stop, waitFor, type Run } from '../helpers/cli.js';
import { sleep } from '../helpers/raw-http.js';

const haproxy = await promisify(execFile)('haproxy', ['-v']).then(
  () => undefined,
  () => 'haproxy is not installed (Debian: apt-get install haproxy)',
);

const INSTANCE = ['--proxy-protocol', 'v2', '--health-path', '/healthz', '--drain-delay', '2', '--no-access-log'];

function startInstance(port: number): Promise<Run> {
  const r = run(['serve', 'test/fixtures/apps/env.mjs', '--port', String(port), ...INSTANCE]);
  return waitFor(r, /serving/).then(() => r);
}

interface Answer {
  pid: number;
  remote: string;
  proxy: { version: number; command: string } | null;
}

/** Requests through `port` from 127.0.0.2 on keep-alive connections, until `done()` says so. */
async function load(
  port: number,
  concurrency: number,
  done: () => boolean,
): Promise<{ sent: number; failed: string[]; answers: Answer[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const failed: string[] = [];
  const answers: Answer[] = [];
  let sent = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      sent++;
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent, localAddress: '127.0.0.2' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 200) answers.push(JSON.parse(body) as Answer);
          else failed.push(`${res.statusCode}: ${body.slice(0, 100)}`);
          resolve();
        });
        res.on('error', (err) => {
          failed.push(String(err));
          resolve();
        });
      });
      req.on('error', (err) => {
        failed.push(String(err));
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!done()) await one();
    }),
  );
  agent.destroy();
  return { sent, failed, answers };
}

describe('deploy: HAProxy with PROXY protocol v2 and health checks', { skip: haproxy }, () => {
  it('restarts the three instances one after another under load with no failed request', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const front = await freePort();
    const instances = await Promise.all(ports.map(startInstance));
    const proxy: ChildProcess = spawn('haproxy', ['-f', 'deploy/haproxy.cfg', '-db'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NSGI_FRONTEND: `127.0.0.1:${front}`,
        NSGI_A: `127.0.0.1:${ports[0]}`,
        NSGI_B: `127.0.0.1:${ports[1]}`,
        NSGI_C: `127.0.0.1:${ports[2]}`,
      },
    });
    let proxyLog = '';
    proxy.stdout!.on('data', (d) => (proxyLog += d));
    proxy.stderr!.on('data', (d) => (proxyLog += d));
    try {
      // All three in rotation: every instance answers through the proxy.
      const warm = new Set<number>();
      for (const deadline = Date.now() + 15_000; warm.size < 3 && Date.now() < deadline;) {
        let n = 0;
        const r = await load(front, 1, () => n++ >= 10);
        for (const a of r.answers) warm.add(a.pid);
        if (warm.size < 3) await sleep(200);
      }
      assert.equal(warm.size, 3, proxyLog);

      let restarting = true;
      const started = Date.now();
      const traffic = load(front, 16, () => !restarting && Date.now() - started > 10_000);
      const replaced: number[] = [];
      for (let i = 0; i < 3; i++) {
        await sleep(1000);
        const old = instances[i]!;
        assert.equal(await stop(old), 0, old.stderr());
        instances[i] = await startInstance(ports[i]!);
        replaced.push(instances[i]!.child.pid!);
        // Back in rotation after two good checks.
        await sleep(1500);
      }
      restarting = false;
      const { sent, failed, answers } = await traffic;
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(
        `HAProxy rolling restart: ${sent} requests in ${seconds.toFixed(1)} s, ${failed.length} failed, ` +
          `${answers.length} answered\n`,
      );
      assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${sent} requests failed`);
      assert.ok(sent >= 10_000, `only ${sent} requests were sent`);
      assert.ok(
        answers.every((a) => a.remote === '127.0.0.2' && a.proxy?.version === 2),
        'REMOTE_ADDR is the client',
      );
      const pids = new Set(answers.map((a) => a.pid));
      for (const pid of replaced) assert.ok(pids.has(pid), `the restarted instance ${pid} served`);
    } finally {
      proxy.kill('SIGTERM');
      await once(proxy, 'exit');
      await Promise.all(instances.map((r) => stop(r)));
    }
  });
});
