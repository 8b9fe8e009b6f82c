/**
 * Benchmark harness. Each server runs in its own process (pinned to core 0 with taskset where
 * present); the load comes from another process (wrk if installed, else autocannon) pinned to
 * core 1. Every round starts fresh server processes, warms each with every case, then runs the
 * cases interleaved; every ratio is against the native baseline measured in the same round.
 *
 *   npm run bench -- [--duration 3] [--rounds 6] [--warmup 4] [--idle 0] [--connections 50] [--cases hello,pipelined,64k,echo] [--servers nsgi-raw,nsgi-node,nsgi-express,nsgi-fastify] [--loader wrk|autocannon]
 *
 * --warmup: seconds of load per server before a round's measurements, shared by the cases (whole
 * seconds, at least 1 per case: a hello-only run warms with 4 s of hello, a run of four cases with
 * 1 s of each). --idle: seconds every server sits idle after it starts before its warm-up (10 or
 * more measures the state of a server whose first requests arrive after V8's memory reducer has
 * run; default 0).
 */

import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServers, cpuMs, has, pinned, root, spawnServer, stopAll, TASKSET } from './build.js';
import { ratioChart, type ChartRow } from './chart.js';

/** The limit row: a node:net server writing prepared responses (bench/servers/limit-net.ts). */
const LIMIT = 'limit-net';

interface ServerDef {
  name: string;
  /** The server's source under bench/servers; it runs compiled, from bench/.build. */
  script: string;
  /** The native server this one is compared with. */
  baseline: string;
}

/** Baselines first; each nsgi row names the native handler it is measured against. */
const SERVERS: ServerDef[] = [
  { name: 'native-node', script: 'bench/servers/native-node.ts', baseline: 'native-node' },
  // What the machine can do: every table shows each server's distance to it (the "of limit" column).
  { name: LIMIT, script: 'bench/servers/limit-net.ts', baseline: 'native-node' },
  { name: 'nsgi-node', script: 'bench/servers/nsgi-node.ts', baseline: 'native-node' },
  { name: 'nsgi-raw', script: 'bench/servers/nsgi-raw.ts', baseline: 'native-node' },
  { name: 'native-express', script: 'bench/servers/native-express.ts', baseline: 'native-express' },
  { name: 'nsgi-express', script: 'bench/servers/nsgi-express.ts', baseline: 'native-express' },
  { name: 'native-fastify', script: 'bench/servers/native-fastify.ts', baseline: 'native-fastify' },
  { name: 'nsgi-fastify', script: 'bench/servers/nsgi-fastify.ts', baseline: 'native-fastify' },
  { name: 'native-hono', script: 'bench/servers/native-hono.ts', baseline: 'native-hono' },
  { name: 'nsgi-fetch', script: 'bench/servers/nsgi-fetch.ts', baseline: 'native-hono' },
  { name: 'hono-via-nsgi', script: 'bench/servers/hono-via-nsgi.ts', baseline: 'native-hono' },
  { name: 'express-via-nsgi', script: 'bench/servers/express-via-nsgi.ts', baseline: 'native-express' },
];

interface CaseDef {
  name: string;
  path: string;
  method: 'GET' | 'POST';
  body?: Buffer;
  /** Requests each connection sends before reading the responses (HTTP/1.1 pipelining). */
  pipeline?: number;
}

const CASES: CaseDef[] = [
  { name: 'hello', path: '/hello', method: 'GET' },
  { name: 'pipelined', path: '/hello', method: 'GET', pipeline: 10 },
  { name: '64k', path: '/64k', method: 'GET' },
  { name: 'echo', path: '/echo', method: 'POST', body: Buffer.alloc(4096, 'p') },
];

interface Sample {
  rps: number;
  p99ms: number;
  rssMiB: number;
  errors: number;
  /** Requests completed in the run. */
  total: number;
  /** Server CPU time (user + system) per request, in microseconds: steadier than req/s on a noisy host. */
  cpuUs: number;
}

async function startServer(def: ServerDef): Promise<{ child: ChildProcess; port: number }> {
  const [cmd, args] = pinned(0, process.execPath, [`bench/.build/${def.script.replace(/\.ts$/, '.js')}`]);
  return spawnServer(def.name, cmd, args);
}

/** The server's resident set size, in MiB (the whole process, so the process tree under taskset is skipped). */
function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

function wrkLuaFor(c: CaseDef): string | undefined {
  if (c.pipeline !== undefined) {
    const file = `${root}bench/results/${c.name}.lua`;
    writeFileSync(
      file,
      `init = function(args)\n  local r = {}\n  for i = 1, ${c.pipeline} do r[i] = wrk.format("${c.method}", "${c.path}") end\n  req = table.concat(r)\nend\n` +
        `request = function() return req end\n`,
    );
    return file;
  }
  if (c.method === 'GET') return undefined;
  const file = `${root}bench/results/${c.name}.lua`;
  writeFileSync(
    file,
    `wrk.method = "${c.method}"\nwrk.body = string.rep("p", ${c.body!.length})\nwrk.headers["Content-Type"] = "text/plain"\n`,
  );
  return file;
}

type LoadResult = Omit<Sample, 'rssMiB' | 'cpuUs'>;

function runWrk(url: string, c: CaseDef, seconds: number, connections: number): LoadResult {
  const script = wrkLuaFor(c);
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(script ? ['-s', script] : []), url];
  const [cmd, a] = pinned(1, 'wrk', args);
  const out = execFileSync(cmd, a, { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const scale = p99?.[2] === 'us' ? 0.001 : p99?.[2] === 's' ? 1000 : 1;
  const errors =
    Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
    Number(
      /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
        .exec(out)
        ?.slice(1)
        .reduce((a, b) => a + Number(b), 0) ?? 0,
    );
  const total = Number(/(\d+) requests in/.exec(out)?.[1]);
  return { rps, p99ms: p99 ? Number(p99[1]) * scale : NaN, errors, total };
}

function runAutocannon(url: string, c: CaseDef, seconds: number, connections: number): LoadResult {
  const bin = `${root}node_modules/autocannon/autocannon.js`;
  const args = [bin, '-j', '-c', String(connections), '-d', String(seconds), '-m', c.method];
  if (c.body) args.push('-b', c.body.toString(), '-H', 'Content-Type=text/plain');
  if (c.pipeline !== undefined) args.push('-p', String(c.pipeline));
  args.push(url);
  const [cmd, a] = pinned(1, process.execPath, args);
  const out = JSON.parse(execFileSync(cmd, a, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as {
    requests: { average: number; total: number };
    latency: { p99: number };
    non2xx: number;
    errors: number;
  };
  return {
    rps: out.requests.average,
    p99ms: out.latency.p99,
    errors: out.non2xx + out.errors,
    total: out.requests.total,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Throws when a name given on the command line is not one of `known`. */
function unknown(what: string, given: string[], known: string[]): void {
  const bad = given.filter((name) => !known.includes(name));
  if (bad.length > 0)
    throw new Error(`unknown ${what} ${bad.map((b) => JSON.stringify(b)).join(', ')}; choose from ${known.join(', ')}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '6' },
      connections: { type: 'string', default: '50' },
      cases: { type: 'string', default: CASES.map((c) => c.name).join(',') },
      servers: { type: 'string', default: SERVERS.map((s) => s.name).join(',') },
      warmup: { type: 'string', default: '4' },
      idle: { type: 'string', default: '0' },
      loader: { type: 'string', default: has('wrk') ? 'wrk' : 'autocannon' },
    },
  });
  if (values.loader !== 'wrk' && values.loader !== 'autocannon') throw new Error('--loader must be wrk or autocannon');
  const WRK = values.loader === 'wrk';
  const seconds = Number(values.duration);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const warmup = Number(values.warmup);
  const idle = Number(values.idle);
  for (const [name, n] of Object.entries({ duration: seconds, rounds, connections, warmup, idle })) {
    if (!Number.isFinite(n) || n < 0)
      throw new Error(
        `--${name} takes a number (0 or more), not ${JSON.stringify(values[name as keyof typeof values])}`,
      );
  }
  const wantedCases = values.cases.split(',');
  const wanted = values.servers.split(',');
  unknown(
    'case',
    wantedCases,
    CASES.map((c) => c.name),
  );
  unknown(
    'server',
    wanted,
    SERVERS.map((s) => s.name),
  );
  const cases = CASES.filter((c) => wantedCases.includes(c.name));
  const servers = SERVERS.filter(
    (s) =>
      s.name === LIMIT ||
      wanted.includes(s.name) ||
      SERVERS.some((x) => wanted.includes(x.name) && x.baseline === s.name),
  );
  const groups = [...new Set(servers.map((s) => s.baseline))].map((b) => servers.filter((s) => s.baseline === b));
  mkdirSync(`${root}bench/results`, { recursive: true });

  const loader = WRK ? 'wrk' : 'autocannon';
  const measure = WRK ? runWrk : runAutocannon;
  process.stderr.write(
    `bench: ${servers.length} servers x ${cases.length} cases x ${rounds} rounds of ${seconds}s, ${connections} connections, ` +
      `load by ${loader}${TASKSET ? ', server on core 0 and load on core 1 (taskset)' : ' (taskset not found: unpinned)'}\n`,
  );

  buildServers();
  const samples = new Map<string, Sample[]>();
  for (let r = 0; r < rounds; r++) {
    // Fresh processes every round, each warmed with every case as soon as it has started, so that all
    // servers begin in the same state. A Node process left idle for ~8 s after it starts gets a
    // memory-reducing GC from V8, and when its first requests come after that, process.nextTick()
    // stays on a slow path (Node's own tick object is built in the runtime, with map migrations) for
    // the rest of the process's life: 20-40% more CPU per small request for native Fastify and nsgi
    // alike. Servers started together and warmed one after another measured that instead of
    // themselves (the same native Fastify server, started twice: 0.80x). --idle measures that state
    // on purpose, for every server.
    const running = new Map<string, { child: ChildProcess; port: number }>();
    try {
      // wrk takes whole seconds.
      const perCase = Math.max(1, Math.round(warmup / Math.max(1, cases.length)));
      const warm = (s: ServerDef): void => {
        const { port } = running.get(s.name)!;
        if (warmup > 0) for (const c of cases) measure(`http://127.0.0.1:${port}${c.path}`, c, perCase, connections);
      };
      if (idle > 0) {
        for (const s of servers) running.set(s.name, await startServer(s));
        await sleep(idle * 1000);
        for (const s of servers) warm(s);
      } else {
        for (const s of servers) {
          running.set(s.name, await startServer(s));
          warm(s);
        }
      }
      for (const c of cases) {
        // Each server runs right next to its baseline (the pair is what a ratio compares), and the
        // order within each group rotates every round so neither always runs first.
        const order = groups.flatMap((g) => g.map((_, i) => g[(i + r) % g.length]!));
        for (const s of order) {
          const { child, port } = running.get(s.name)!;
          // taskset execs into node, so the child's pid is the server's.
          const cpuBefore = cpuMs(child.pid!);
          const result = measure(`http://127.0.0.1:${port}${c.path}`, c, seconds, connections);
          const cpuUs = ((cpuMs(child.pid!) - cpuBefore) * 1000) / result.total;
          const sample: Sample = { ...result, cpuUs, rssMiB: rssMiB(child.pid!) };
          const key = `${s.name}|${c.name}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
          process.stderr.write(
            `  round ${r + 1} ${c.name.padEnd(6)} ${s.name.padEnd(14)} ${sample.rps.toFixed(0).padStart(7)} req/s  p99 ${sample.p99ms.toFixed(2)} ms  ${sample.cpuUs.toFixed(1)} CPU-us/req${sample.errors ? `  ${sample.errors} errors` : ''}\n`,
          );
        }
      }
    } finally {
      await stopAll([...running.values()].map((x) => x.child));
    }
  }

  const lines: string[] = [];
  lines.push(
    `Node ${process.version}, ${loader}, ${connections} connections, ${rounds} rounds x ${seconds}s (fresh processes each round${idle > 0 ? `, idle ${idle}s before warm-up` : ''}; medians; ratios paired by round)${TASKSET ? ', server pinned to one core' : ''}`,
  );
  lines.push('');
  lines.push(
    '| case | server | req/s | p99 (ms) | RSS (MiB) | ratio to baseline (req/s; median of rounds, range) | of limit (req/s) | server CPU µs/req | ratio (CPU/req, baseline ÷ this) | errors |',
  );
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const results: Record<string, unknown>[] = [];
  for (const c of cases) {
    for (const s of servers) {
      const xs = samples.get(`${s.name}|${c.name}`) ?? [];
      const base = samples.get(`${s.baseline}|${c.name}`) ?? [];
      const rps = median(xs.map((x) => x.rps));
      // Paired: each round's ratio compares two runs made seconds apart, so a slow spell of a shared
      // host moves both; the median of the paired ratios is far steadier than a ratio of medians.
      const ratios = xs.map((x, i) => x.rps / base[i]!.rps);
      const ratio = median(ratios);
      const limit = samples.get(`${LIMIT}|${c.name}`) ?? [];
      const ofLimit = median(xs.map((x, i) => x.rps / limit[i]!.rps));
      const p99 = median(xs.map((x) => x.p99ms));
      const rss = Math.max(...xs.map((x) => x.rssMiB));
      const errors = xs.reduce((a, x) => a + x.errors, 0);
      const cpu = median(xs.map((x) => x.cpuUs));
      const cpuRatio = median(xs.map((x, i) => base[i]!.cpuUs / x.cpuUs));
      const isBase = s.baseline === s.name;
      results.push({
        case: c.name,
        server: s.name,
        baseline: s.baseline,
        rps,
        p99,
        rss,
        ratio,
        ratios,
        ofLimit,
        cpu,
        cpuRatio,
        errors,
        rounds: xs.map((x) => x.rps),
      });
      lines.push(
        `| ${c.name} | ${s.name} | ${rps.toFixed(0)} | ${p99.toFixed(2)} | ${rss.toFixed(1)} | ${isBase ? 'baseline' : `${ratio.toFixed(2)}x (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`} | ${ofLimit.toFixed(2)}x | ${cpu.toFixed(1)} | ${isBase ? 'baseline' : `${cpuRatio.toFixed(2)}x`} | ${errors} |`,
      );
    }
  }
  const table = lines.join('\n') + '\n';
  process.stdout.write(table);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(
    `${root}bench/results/${stamp}.json`,
    JSON.stringify({ node: process.version, loader, connections, rounds, seconds, results }, null, 2),
  );
  writeFileSync(`${root}bench/results/${stamp}.md`, table);
  const chart = ratioChart(results as unknown as ChartRow[], `Node ${process.version}, ${loader}, ${rounds} rounds`);
  writeFileSync(`${root}bench/results/${stamp}.svg`, chart);
  writeFileSync(`${root}bench/results/latest.svg`, chart);
  process.stderr.write(`bench: wrote bench/results/${stamp}.{md,json,svg} (and latest.svg)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
