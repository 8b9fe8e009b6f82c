/**
 * Real clients against `nsgi serve`, from Debian packages (`npm run test:deploy`; .ci/run installs
 * them): curl over HTTP/2 with TLS (ALPN) on every --server that carries it, and with prior knowledge
 * (h2c) on --server node --http2.
 */

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

const curl = await run('curl', ['--version']).then(
  ({ stdout }) =>
    /\bHTTP2\b/.test(stdout) ? undefined : 'this curl has no HTTP/2 support (Debian: apt-get install curl)',
  () => 'curl is not installed (Debian: apt-get install curl)',
);

/** Starts `nsgi serve` and resolves with its URL and process. */
async function serve(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', ...args, '--port', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
    const m = /at (https?:\/\/127\.0\.0\.1:\d+)/.exec(out);
    if (m) return { url: m[1]!, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`nsgi serve did not start: ${out}`);
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** curl's body and the HTTP version it used, e.g. ['This is dog!', '2']. */
async function fetchWithCurl(flags: string[], url: string): Promise<[string, string]> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', ...flags, '-w', '\n%{http_version}', url]);
  const i = stdout.lastIndexOf('\n');
  return [stdout.slice(0, i), stdout.slice(i + 1)];
}

describe('curl against nsgi serve', { skip: curl }, () => {
  const TLS = ['--key', 'test/fixtures/key.pem', '--cert', 'test/fixtures/cert.pem'];
  for (const server of ['raw', 'node', 'fastify']) {
    it(`curl --http2 over TLS to --server ${server} gets HTTP/2; --http1.1 still works`, async () => {
      const { url, child } = await serve(['examples/index.ts', '--server', server, ...TLS]);
      try {
        assert.deepEqual(await fetchWithCurl(['--http2', '-k'], `${url}/dispatch/dog`), ['This is dog!', '2']);
        assert.deepEqual(await fetchWithCurl(['--http1.1', '-k'], `${url}/dispatch/cat`), ['This is cat!', '1.1']);
      } finally {
        await stop(child);
      }
    });
  }

  it('curl --http2-prior-knowledge to --server node --http2 (h2c)', async () => {
    const { url, child } = await serve(['examples/index.ts', '--server', 'node', '--http2']);
    try {
      assert.deepEqual(await fetchWithCurl(['--http2-prior-knowledge'], `${url}/dispatch/dog`), ['This is dog!', '2']);
    } finally {
      await stop(child);
    }
  });
});
