/**
 * Bulk transfer: a 1 GiB streamed upload and a 1 GiB streamed download through each server, with the
 * server's peak resident memory (VmHWM) — streaming must keep it flat whatever the size. Each server
 * first moves --warmup-mib each way unmeasured: the first few hundred MiB through a fresh process run
 * at about half speed while the JIT settles.
 *
 *   npm run bench:bulk -- [--size-mib 1024] [--warmup-mib 512] [--servers nsgi-raw,nsgi-node,native-node]
 */

import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { buildServers, root, spawnServer, stopAll } from './build.js';

const SCRIPTS: Record<string, string> = {
  'native-node': 'bench/servers/native-node.js',
  'nsgi-node': 'bench/servers/nsgi-node.js',
  'nsgi-raw': 'bench/servers/nsgi-raw.js',
};

function start(name: string): Promise<{ child: ChildProcess; port: number }> {
  return spawnServer(name, process.execPath, [`${root}bench/.build/${SCRIPTS[name]}`]);
}

function peakMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const CHUNK = Buffer.alloc(64 * 1024, 'u');

/** Streams `bytes` to /upload (chunked), with backpressure; resolves with the byte count the server read. */
function upload(port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/upload',
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(Number(text)));
      },
    );
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(CHUNK.length, bytes - sent);
        sent += n;
        if (!req.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** Reads /download?bytes=N to the end, discarding it; resolves with the byte count received. */
function download(port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: `/download?bytes=${bytes}` }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => (n += d.length));
        res.on('end', () => resolve(n));
      })
      .on('error', reject);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '1024' },
      'warmup-mib': { type: 'string', default: '512' },
      servers: { type: 'string', default: 'native-node,nsgi-node,nsgi-raw' },
    },
  });
  const bytes = Number(values['size-mib']) * 1024 * 1024;
  const warmup = Number(values['warmup-mib']) * 1024 * 1024;
  if (!(bytes > 0) || !(warmup >= 0))
    throw new Error('--size-mib takes a number above 0 and --warmup-mib one of 0 or more');
  const names = values.servers.split(',');
  const bad = names.filter((name) => !Object.hasOwn(SCRIPTS, name));
  if (bad.length > 0)
    throw new Error(
      `unknown server ${bad.map((b) => JSON.stringify(b)).join(', ')}; choose from ${Object.keys(SCRIPTS).join(', ')}`,
    );
  buildServers();
  const lines = [
    `Node ${process.version}; ${values['size-mib']} MiB each way, streamed in 64 KiB pieces, after ${values['warmup-mib']} MiB each way unmeasured`,
    '',
    '| server | upload MiB/s | download MiB/s | server peak RSS (MiB) |',
    '|---|---:|---:|---:|',
  ];
  for (const name of names) {
    const { child, port } = await start(name);
    try {
      if (warmup > 0) {
        if ((await upload(port, warmup)) !== warmup || (await download(port, warmup)) !== warmup)
          throw new Error(`${name}: warm-up transfer came up short`);
      }
      let t = performance.now();
      const got = await upload(port, bytes);
      const up = bytes / 1048576 / ((performance.now() - t) / 1000);
      if (got !== bytes) throw new Error(`${name}: server read ${got} of ${bytes} uploaded bytes`);
      t = performance.now();
      const received = await download(port, bytes);
      const down = bytes / 1048576 / ((performance.now() - t) / 1000);
      if (received !== bytes) throw new Error(`${name}: received ${received} of ${bytes} bytes`);
      lines.push(`| ${name} | ${up.toFixed(0)} | ${down.toFixed(0)} | ${peakMiB(child.pid!).toFixed(1)} |`);
      process.stderr.write(`  ${name}: done\n`);
    } finally {
      await stopAll([child]);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
