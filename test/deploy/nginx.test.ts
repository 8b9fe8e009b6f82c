/**
 * nginx (Debian package `nginx`) as a TLS reverse proxy in front of `nsgi serve`, with the config in
 * deploy/nginx.conf (its placeholders filled in): the app sees the client's address and scheme
 * through X-Forwarded-For/-Proto (trusted from loopback by default), and a WebSocket passes through.
 */

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { freePort, root, serve, stop } from '../helpers/cli.js';
import { connect, sleep } from '../helpers/raw-http.js';

const nginx = await promisify(execFile)('nginx', ['-v']).then(
  () => undefined,
  () => 'nginx is not installed (Debian: apt-get install nginx)',
);

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path, localAddress: '127.0.0.2', rejectUnauthorized: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

describe('deploy: nginx reverse proxy with X-Forwarded-*', { skip: nginx }, () => {
  it('the app sees the client address and https; a WebSocket passes through', async () => {
    const app = await serve(['test/fixtures/apps/env.mjs', '--no-access-log']);
    const dir = mkdtempSync(join(tmpdir(), 'nsgi-nginx-'));
    const port = await freePort();
    const conf = readFileSync(join(root, 'deploy/nginx.conf'), 'utf8')
      .replaceAll('{{RUN_DIR}}', dir)
      .replaceAll('{{LISTEN}}', `127.0.0.1:${port}`)
      .replaceAll('{{CERT}}', join(root, 'test/fixtures/cert.pem'))
      .replaceAll('{{KEY}}', join(root, 'test/fixtures/key.pem'))
      .replaceAll('{{NSGI}}', new URL(app.url).host);
    assert.doesNotMatch(conf, /\{\{/);
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const proxy = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;'], { stdio: 'inherit' });
    try {
      for (let i = 0; ; i++) {
        const ok = await connect(port).then(
          (s) => (s.destroy(), true),
          () => false,
        );
        if (ok) break;
        if (i > 100) throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
        await sleep(50);
      }
      const r = await get(port, '/through?x=1');
      assert.equal(r.status, 200, r.body);
      const seen = JSON.parse(r.body) as { remote: string; scheme: string; path: string };
      assert.deepEqual([seen.remote, seen.scheme, seen.path], ['127.0.0.2', 'https', '/through']);

      const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, { rejectUnauthorized: false, localAddress: '127.0.0.2' });
      await once(ws, 'open');
      const reply = once(ws, 'message');
      ws.send('hello');
      assert.equal(String((await reply)[0]), '127.0.0.2 https hello');
      ws.close();
      await once(ws, 'close');
    } finally {
      proxy.kill('SIGQUIT');
      await once(proxy, 'exit');
      await stop(app);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
