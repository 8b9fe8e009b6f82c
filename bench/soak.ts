/**
 * Soak: millions of keep-alive hello requests (wrk) on the bundled server and on node:http through
 * nsgi, and on plain node:http for comparison. After the first million and at the end the server
 * writes a heap snapshot, collects garbage and reports RSS and heap used; the two snapshots are
 * compared by constructor, so that an object kept per request shows as a count that grew with the
 * requests. In between, RSS and V8's committed heap are taken after a full GC at every further
 * million, to show whether memory settles or keeps growing, and where (heap or outside it).
 *
 *   npm run bench:soak -- [--requests 10000000] [--servers nsgi-raw,nsgi-node,native-node] [--connections 50]
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildServers, has, pinned, root } from './build.js';

const MiB = 1024 * 1024;
/** wrk runs of this many seconds until the count is reached. */
const CHUNK_S = 10;
const FIRST = 1_000_000;

interface Measure {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  newSpace: number;
  codeSpace: number;
}

interface Probe {
  child: ChildProcess;
  port: number;
  ask<T>(msg: object): Promise<T>;
}

async function start(name: string): Promise<Probe> {
  const [cmd, args] = pinned(0, process.execPath, [
    '--expose-gc',
    '--import',
    `${root}bench/.build/bench/servers/soak-probe.js`,
    `${root}bench/.build/bench/servers/${name}.js`,
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  for (const deadline = Date.now() + 15_000; !/ready (\d+)/.test(out);) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const port = Number(/ready (\d+)/.exec(out)![1]);
  const ask = async <T>(msg: object): Promise<T> => {
    child.send(msg);
    const [reply] = (await once(child, 'message')) as [T];
    return reply;
  };
  return { child, port, ask };
}

/** Runs wrk for `seconds`; the number of requests it completed. */
function wrk(port: number, seconds: number, connections: number): number {
  const [cmd, args] = pinned(1, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, `http://127.0.0.1:${port}/hello`]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  if (/Non-2xx|Socket errors/.test(out)) throw new Error(`wrk saw errors:\n${out}`);
  return Number(/(\d+) requests in/.exec(out)![1]);
}

/** Object counts by constructor name in a heap snapshot. */
function countsByName(file: string): Map<string, number> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const nf = snap.snapshot.meta.node_fields.length;
  const types = snap.snapshot.meta.node_types[0];
  const counts = new Map<string, number>();
  for (let i = 0; i < snap.nodes.length; i += nf) {
    const type = types[snap.nodes[i]!];
    if (type !== 'object' && type !== 'closure') continue;
    const name = `${type === 'closure' ? 'closure ' : ''}${snap.strings[snap.nodes[i + 1]!]}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

interface SoakResult {
  row: string;
  /** RSS and committed heap after a full GC, at each million from the second. */
  series: Array<{ at: number; m: Measure }>;
}

async function soak(name: string, target: number, connections: number, dir: string): Promise<SoakResult> {
  const server = await start(name);
  try {
    let total = 0;
    let first: Measure | undefined;
    let firstAt = 0;
    const series: SoakResult['series'] = [];
    while (total < target) {
      const seconds = Math.min(
        CHUNK_S,
        Math.max(1, Math.ceil(((first === undefined ? FIRST : target) - total) / 50_000)),
      );
      total += wrk(server.port, seconds, connections);
      process.stderr.write(`  ${name}: ${(total / 1e6).toFixed(2)} M requests\n`);
      if (first === undefined && total >= FIRST) {
        // Snapshot first: writing one raises RSS for good, so both measurements follow one.
        await server.ask({ probe: 'snapshot', path: `${dir}/${name}-first.heapsnapshot` });
        const m = await server.ask<Measure>({ probe: 'measure' });
        first = m;
        firstAt = total;
        series.push({ at: total, m });
      } else if (
        first !== undefined &&
        total < target &&
        Math.floor(total / 1e6) > Math.floor(series.at(-1)!.at / 1e6)
      ) {
        series.push({ at: total, m: await server.ask<Measure>({ probe: 'measure' }) });
      }
    }
    // The same steps as after the first million: a snapshot (its GCs also shrink the young
    // generation that the load grew), then the measurement.
    await server.ask({ probe: 'snapshot', path: `${dir}/${name}-end.heapsnapshot` });
    const end = await server.ask<Measure>({ probe: 'measure' });
    series.push({ at: total, m: end });
    const a = countsByName(`${dir}/${name}-first.heapsnapshot`);
    const b = countsByName(`${dir}/${name}-end.heapsnapshot`);
    const grown = [...b]
      .map(([k, n]) => [k, n - (a.get(k) ?? 0)] as const)
      .filter(([, d]) => d > 0)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 3)
      .map(([k, d]) => `${k} +${d}`)
      .join(', ');
    const row =
      `| ${name} | ${(total / 1e6).toFixed(2)} M | ${(first!.rss / MiB).toFixed(1)} (at ${(firstAt / 1e6).toFixed(2)} M) | ` +
      `${(end.rss / MiB).toFixed(1)} | ${((end.rss - first!.rss) / MiB).toFixed(2)} | ${(first!.heapUsed / MiB).toFixed(2)} | ` +
      `${(end.heapUsed / MiB).toFixed(2)} | ${grown || 'none'} |`;
    return { row, series };
  } finally {
    server.child.kill('SIGTERM');
    await once(server.child, 'exit');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '10000000' },
      servers: { type: 'string', default: 'nsgi-raw,nsgi-node,native-node' },
      connections: { type: 'string', default: '50' },
    },
  });
  const target = Number(values.requests);
  if (!(target > FIRST)) throw new Error(`--requests must be above ${FIRST}, got ${values.requests}`);
  if (!has('wrk')) throw new Error('bench:soak needs wrk (Debian package "wrk")');
  if (!process.env.NO_BUILD) buildServers();
  const dir = `${root}bench/results/soak`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const results: Array<[string, SoakResult]> = [];
  for (const name of values.servers.split(','))
    results.push([name, await soak(name, target, Number(values.connections), dir)]);
  process.stdout.write(
    `GET /hello over ${values.connections} keep-alive connections (wrk), Node ${process.version}; memory after a full GC\n\n` +
      '| server | requests | RSS MiB after the first million | RSS MiB at the end | RSS growth MiB | heap used MiB (first million) | heap used MiB (end) | constructors that grew most (object counts) |\n' +
      '|---|---:|---:|---:|---:|---:|---:|---|\n' +
      results.map(([, r]) => r.row).join('\n') +
      '\n\nAfter a full GC at each million (MiB): RSS / V8 committed heap (of which young generation, code); ' +
      'the first after a heap snapshot, the others not\n\n' +
      results
        .map(
          ([name, r]) =>
            `- ${name}: ` +
            r.series
              .map(
                ({ at, m }) =>
                  `${(at / 1e6).toFixed(1)} M ${(m.rss / MiB).toFixed(1)} / ${(m.heapTotal / MiB).toFixed(1)} ` +
                  `(${(m.newSpace / MiB).toFixed(1)}, ${(m.codeSpace / MiB).toFixed(1)})`,
              )
              .join('; '),
        )
        .join('\n') +
      '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:soak: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
