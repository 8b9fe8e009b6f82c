/**
 * HTTP/2 benchmark with h2load (Debian: apt-get install nghttp2-client): hello world over 50 TLS
 * connections with 10 concurrent streams each, for nsgi on createNodeServer({ http2: true }) and on
 * the bundled server's h2 path, against a node:http2 compatibility-API handler in the same run; then
 * the same servers over HTTP/1.1 (`h2load --h1`, one request at a time per connection) for scale.
 * Servers are pinned to core 0 and h2load to core 1 where taskset exists; fresh processes each
 * round; the table gives medians.
 *
 *   npm run bench:h2 -- [--rounds 3] [--seconds 5] [--connections 50] [--streams 10]
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildServers, has, pinned, root, spawnServer, stopAll, TASKSET } from './build.js';

const SERVERS = [
  { name: 'native node:http2 (compatibility API)', script: 'h2-native' },
  { name: 'nsgi createNodeServer({ http2: true })', script: 'h2-nsgi-node' },
  { name: 'nsgi raw server (TLS, h2 by ALPN)', script: 'h2-nsgi-raw' },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Requests per second h2load measured, after a second of warm-up. */
function h2load(port: number, seconds: number, connections: number, streams: number, h1: boolean): number {
  const args = ['-D', String(seconds), '--warm-up-time=1', '-c', String(connections), '-t', '1'];
  args.push(...(h1 ? ['--h1', '-m', '1'] : ['-m', String(streams)]), `https://127.0.0.1:${port}/hello`);
  const [cmd, full] = pinned(1, 'h2load', args);
  const out = execFileSync(cmd, full, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(out);
  const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  if (!done || !rate) throw new Error(`cannot read h2load's output:\n${out}`);
  if (Number(done[3]) > 0) throw new Error(`h2load saw ${done[3]} failed requests:\n${out}`);
  if (!h1 && !/Application protocol: h2/.test(out)) throw new Error(`h2load did not negotiate h2:\n${out}`);
  return Number(rate[1]);
}

async function main(): Promise<void> {
  if (!has('h2load')) {
    process.stderr.write(
      'bench:h2 needs h2load: apt-get install nghttp2-client (Debian/Ubuntu), brew install nghttp2\n',
    );
    process.exit(2);
  }
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '50' },
      streams: { type: 'string', default: '10' },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const streams = Number(values.streams);
  if (!process.env.NO_BUILD) buildServers();
  const results = new Map<string, { h2: number[]; h1: number[] }>();
  for (const s of SERVERS) results.set(s.name, { h2: [], h1: [] });
  for (let round = 1; round <= rounds; round++) {
    for (const s of SERVERS) {
      for (const h1 of [false, true]) {
        process.stderr.write(`round ${round}/${rounds}: ${s.name} over ${h1 ? 'HTTP/1.1' : 'h2'}\n`);
        const [cmd, args] = pinned(0, process.execPath, [`bench/.build/bench/servers/${s.script}.js`]);
        const server = await spawnServer(s.script, cmd, args);
        try {
          const rate = h2load(server.port, seconds, connections, streams, h1);
          results.get(s.name)![h1 ? 'h1' : 'h2'].push(rate);
        } finally {
          await stopAll([server.child]);
        }
      }
    }
  }
  const base = results.get(SERVERS[0]!.name)!;
  const [baseH2, baseH1] = [median(base.h2), median(base.h1)];
  let table =
    `GET /hello (11 bytes) over ${connections} TLS connections for ${seconds} s: h2 with ${streams} streams per ` +
    `connection, HTTP/1.1 one request at a time; h2load; median of ${rounds} rounds (Node ${process.version}` +
    `${TASKSET ? ', server on core 0, h2load on core 1' : ''})\n\n` +
    '| server | h2 req/s | vs native | HTTP/1.1 req/s | vs native |\n|---|---:|---:|---:|---:|\n';
  for (const s of SERVERS) {
    const r = results.get(s.name)!;
    const [h2, h1] = [median(r.h2), median(r.h1)];
    table += `| ${s.name} | ${h2.toFixed(0)} | ${(h2 / baseH2).toFixed(2)}x | ${h1.toFixed(0)} | ${(h1 / baseH1).toFixed(2)}x |\n`;
  }
  mkdirSync(`${root}bench/results`, { recursive: true });
  const file = `${root}bench/results/h2-${new Date().toISOString().replace(/[:.]/g, '-')}.md`;
  writeFileSync(file, table);
  process.stdout.write(`${table}\nwritten to ${file.slice(root.length)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:h2: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
