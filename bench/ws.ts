/**
 * WebSocket benchmark: 1 KiB messages echoed over 50 connections (messages/s and p99 latency), and
 * the memory of 10,000 idle sockets, for nsgi on the bundled server, node:http and Fastify against
 * a native `ws` server on node:http, in the same run. Servers are pinned to core 0 and the load to
 * core 1 where taskset exists; each round starts fresh processes; the table gives medians.
 *
 *   npm run bench:ws -- [--rounds 3] [--seconds 5] [--connections 50] [--bytes 1024] [--idle 10000]
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildServers, cpuMs, pinned, root, spawnServer, stopAll, TASKSET } from './build.js';

const SERVERS = [
  { name: 'native ws (node:http)', script: 'ws-native' },
  { name: 'nsgi raw server', script: 'ws-nsgi-raw' },
  { name: 'nsgi node:http', script: 'ws-nsgi-node' },
  { name: 'nsgi Fastify', script: 'ws-nsgi-fastify' },
];

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Asks the server (started with --expose-gc) to collect garbage, so RSS counts what it retains. */
async function collect(pid: number): Promise<void> {
  process.kill(pid, 'SIGUSR2');
  await sleep(500);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(script: string): Promise<{ child: ChildProcess; port: number }> {
  const [cmd, args] = pinned(0, process.execPath, ['--expose-gc', `bench/.build/bench/servers/${script}.js`]);
  return spawnServer(script, cmd, args);
}

function client(args: string[]): ChildProcess {
  const [cmd, full] = pinned(1, process.execPath, ['--import', 'tsx', 'bench/ws-load.ts', ...args]);
  return spawn(cmd, full, { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
}

async function echoRun(
  port: number,
  connections: number,
  seconds: number,
  bytes: number,
  pid: number,
): Promise<{ messages: number; p99ms: number; cpuUs: number }> {
  const cpuBefore = cpuMs(pid);
  const c = client(['echo', String(port), String(connections), String(seconds), String(bytes)]);
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  const code = await new Promise((r) => c.once('exit', r));
  if (code !== 0) throw new Error(`the echo client failed (${String(code)}): ${out}`);
  const r = JSON.parse(out.trim()) as { messages: number; p99ms: number; all: number };
  return { ...r, cpuUs: ((cpuMs(pid) - cpuBefore) * 1000) / r.all };
}

/** KiB of server RSS per idle socket: RSS with `count` sockets open less RSS before, over count. */
async function idleRun(pid: number, port: number, count: number): Promise<number> {
  await sleep(500);
  await collect(pid);
  const before = rssKiB(pid);
  const c = client(['idle', String(port), String(count)]);
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  while (!out.includes('open')) {
    if (c.exitCode !== null) throw new Error('the idle client failed');
    await sleep(50);
  }
  await sleep(1000);
  await collect(pid);
  const after = rssKiB(pid);
  c.stdin!.end();
  await new Promise((r) => c.once('exit', r));
  return (after - before) / count;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '50' },
      bytes: { type: 'string', default: '1024' },
      idle: { type: 'string', default: '10000' },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const bytes = Number(values.bytes);
  const idle = Number(values.idle);
  if (!process.env.NO_BUILD) buildServers();
  const results = new Map<string, { messages: number[]; p99: number[]; cpu: number[]; kib: number[] }>();
  for (const s of SERVERS) results.set(s.name, { messages: [], p99: [], cpu: [], kib: [] });
  for (let round = 1; round <= rounds; round++) {
    for (const s of SERVERS) {
      process.stderr.write(`round ${round}/${rounds}: ${s.name}\n`);
      const r = results.get(s.name)!;
      let server = await start(s.script);
      try {
        const e = await echoRun(server.port, connections, seconds, bytes, server.child.pid!);
        r.messages.push(e.messages);
        r.p99.push(e.p99ms);
        r.cpu.push(e.cpuUs);
      } finally {
        await stopAll([server.child]);
      }
      server = await start(s.script);
      try {
        r.kib.push(await idleRun(server.child.pid!, server.port, idle));
      } finally {
        await stopAll([server.child]);
      }
    }
  }
  const base = results.get(SERVERS[0]!.name)!;
  const baseMessages = median(base.messages);
  const baseKib = median(base.kib);
  let table =
    `${bytes} B messages echoed over ${connections} connections for ${seconds} s; ${idle} idle sockets; ` +
    `median of ${rounds} rounds (Node ${process.version}${TASKSET ? ', server on core 0, client on core 1' : ''})\n\n` +
    '| server | messages/s | vs native | p99 ms | server CPU µs/message | KiB per idle socket | vs native |\n' +
    '|---|---:|---:|---:|---:|---:|---:|\n';
  for (const s of SERVERS) {
    const r = results.get(s.name)!;
    const m = median(r.messages);
    const k = median(r.kib);
    table += `| ${s.name} | ${m.toFixed(0)} | ${(m / baseMessages).toFixed(2)}x | ${median(r.p99).toFixed(2)} | ${median(r.cpu).toFixed(1)} | ${k.toFixed(1)} | ${(k / baseKib).toFixed(2)}x |\n`;
  }
  mkdirSync(`${root}bench/results`, { recursive: true });
  const file = `${root}bench/results/ws-${new Date().toISOString().replace(/[:.]/g, '-')}.md`;
  writeFileSync(file, table);
  process.stdout.write(`${table}\nwritten to ${file.slice(root.length)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:ws: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
