/**
 * Instructions per request, counted by valgrind's callgrind: unlike req/s on a shared machine, the
 * count does not depend on the machine's speed, so it shows small changes to the per-request cost.
 * V8's hash seed is fixed: with a random one, property lookups in Node's own dictionaries cost a
 * different amount in every process (runs of one build differed by up to 0.7%). Runs of one build
 * still fall into two modes a few percent apart (how often V8 scavenges, bench/NOTES.md): compare
 * builds by the medians of several rounds.
 * Each server runs under callgrind; it is warmed up until the JIT has settled, the counters are
 * zeroed, a fixed number of keep-alive requests is sent, and the counters are dumped.
 *
 *   npm run bench:instructions -- [--servers native-node,nsgi-node,limit-net] [--path /hello] [--warmup 25000] [--requests 10000]
 *
 * A server is a name under bench/servers, or the path of a compiled server script (to compare a
 * variant of the code); NO_BUILD=1 skips compiling bench/.build first.
 */

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildServers, root } from './build.js';

/** Sends `n` GET requests over the agent's keep-alive connections and waits for all of them. */
async function load(agent: http.Agent, port: number, path: string, n: number): Promise<void> {
  let started = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const next = (): void => {
      if (started >= n) return;
      started++;
      http
        .get({ host: '127.0.0.1', port, path, agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (++done === n) resolve();
            else next();
          });
        })
        .on('error', reject);
    };
    for (let i = 0; i < agent.maxSockets; i++) next();
  });
}

async function count(server: string, path: string, warmup: number, requests: number): Promise<number> {
  const dir = join(tmpdir(), `nsgi-callgrind-${process.pid}-${server.replace(/[^a-z0-9-]/gi, '_')}`);
  rmSync(dir, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', dir]);
  const out = join(dir, 'callgrind.out');
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--single-threaded',
      '--hash-seed=1',
      server.includes('/') ? server : `bench/.build/bench/servers/${server}.js`,
    ],
    { cwd: root, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /ready (\d+)/.exec(stdout);
      if (m) {
        clearInterval(timer);
        resolve(Number(m[1]));
      }
    }, 100);
    child.once('exit', (code) => reject(new Error(`${server} exited with ${code} under valgrind`)));
  });
  // The same connections for warm-up and count: connections closing make V8 drop and later redo
  // optimized code for the connection paths, and that compiling would be counted as per-request work.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  try {
    await load(agent, port, path, warmup);
    execFileSync('callgrind_control', ['-z', String(child.pid)], { stdio: 'ignore' });
    await load(agent, port, path, requests);
    execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' });
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  const dumps = readdirSync(dir).filter((f) => f.startsWith('callgrind.out.'));
  const dump = readFileSync(join(dir, dumps.sort().at(-1)!), 'utf8');
  rmSync(dir, { recursive: true, force: true });
  const total = Number(/^(?:summary|totals): (\d+)/m.exec(dump)?.[1]);
  return total / requests;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      servers: { type: 'string', default: 'native-node,nsgi-node,limit-net' },
      path: { type: 'string', default: '/hello' },
      warmup: { type: 'string', default: '25000' },
      requests: { type: 'string', default: '10000' },
    },
  });
  try {
    execFileSync('sh', ['-c', 'command -v valgrind && command -v callgrind_control'], { stdio: 'ignore' });
  } catch {
    throw new Error('valgrind is not installed (Debian package "valgrind")');
  }
  const servers = values.servers.split(',');
  for (const s of servers) {
    const script = s.includes('/') ? s : `${root}bench/servers/${s}.ts`;
    if (!existsSync(script))
      throw new Error(
        `unknown server ${JSON.stringify(s)}: give a name under bench/servers or the path of a compiled server script`,
      );
  }
  if (!process.env.NO_BUILD) buildServers();
  const rows: Array<[string, number]> = [];
  for (const s of servers) {
    const ir = await count(s, values.path, Number(values.warmup), Number(values.requests));
    process.stderr.write(`  ${s}: ${ir.toFixed(0)} instructions/request\n`);
    rows.push([s, ir]);
  }
  const base = rows[0]![1];
  process.stdout.write(
    `GET ${values.path}, ${values.requests} requests after ${values.warmup} to warm up (callgrind, Node ${process.version})\n\n`,
  );
  process.stdout.write('| server | instructions/request | vs first row |\n|---|---:|---:|\n');
  for (const [s, ir] of rows) process.stdout.write(`| ${s} | ${ir.toFixed(0)} | ${(ir / base).toFixed(3)}x |\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
