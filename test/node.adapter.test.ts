import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import request from 'supertest';
import { createNodeServer, toNodeListener } from '../adapters/node.js';
import { encodeScriptName } from '../src/script-name.js';
import type { App, Environ } from '../src/types.js';
import { LogCapture } from './conformance/harness.js';
import { connect, readUntil } from './helpers/raw-http.js';

const fixtures = new URL('./fixtures/', import.meta.url);
const tls = { key: readFileSync(new URL('key.pem', fixtures)), cert: readFileSync(new URL('cert.pem', fixtures)) };

function recorder() {
  const seen: Environ[] = [];
  const app: App = (environ, sr) => {
    seen.push(environ);
    sr('200 OK', [['Content-Type', 'text/plain']]);
    return [Buffer.from('ok')];
  };
  return { app, seen };
}

async function listen(server: http.Server | https.Server, ...args: unknown[]): Promise<void> {
  (server.listen as (...a: unknown[]) => void)(...(args.length ? args : [0, '127.0.0.1']));
  await once(server, 'listening');
}

async function close(server: http.Server | https.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

describe('node adapter', () => {
  it('serves https with wsgi.url_scheme https and HTTPS=on', async () => {
    const { app, seen } = recorder();
    const server = createNodeServer(app, { https: tls, errorLog: new LogCapture() });
    await listen(server);
    try {
      const port = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/secure?x=1', rejectUnauthorized: false }, (res) => {
            let data = '';
            res.on('data', (d) => (data += d));
            res.on('end', () => resolve(data));
          })
          .on('error', reject);
      });
      assert.equal(body, 'ok');
      assert.equal(seen[0]!['wsgi.url_scheme'], 'https');
      assert.equal(seen[0]!.HTTPS, 'on');
      assert.equal(seen[0]!.SERVER_PORT, String(port));
    } finally {
      await close(server);
    }
  });

  it('serves a unix socket with digit-only SERVER_PORT and a SERVER_NAME', async () => {
    const { app, seen } = recorder();
    const path = join(tmpdir(), `nsgi-test-${process.pid}-${Date.now()}.sock`);
    const server = http.createServer(toNodeListener(app));
    await listen(server, path);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get({ socketPath: path, path: '/u', headers: { Host: 'unix.local' } }, (res) => {
            let data = '';
            res.on('data', (d) => (data += d));
            res.on('end', () => resolve(data));
          })
          .on('error', reject);
      });
      assert.equal(body, 'ok');
      assert.equal(seen[0]!.SERVER_PORT, '80');
      assert.equal(seen[0]!.SERVER_NAME, 'localhost');
      assert.equal(seen[0]!.HTTP_HOST, 'unix.local');
    } finally {
      await close(server);
      rmSync(path, { force: true });
    }
  });

  it('works with plain http.createServer, where Node answers 100 Continue itself', async () => {
    const app: App = async (environ, sr) => {
      const body = await environ['wsgi.input'].read();
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return [body];
    };
    const server = http.createServer(toNodeListener(app));
    await listen(server);
    try {
      const sock = await connect((server.address() as AddressInfo).port);
      sock.write('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
      await readUntil(sock, (t) => t.includes('100 Continue'));
      sock.write('data');
      await readUntil(sock, (t) => t.endsWith('data'));
      sock.destroy();
    } finally {
      await close(server);
    }
  });

  it('takes a mount prefix and explains a malformed one', async () => {
    assert.equal(encodeScriptName('/'), undefined);
    assert.equal(encodeScriptName(''), undefined);
    assert.equal(encodeScriptName('/app'), '/app');
    assert.equal(encodeScriptName('/caf\u00e9'), '/caf%C3%A9');
    assert.equal(encodeScriptName('/a%20b'), '/a%20b');
    assert.throws(() => encodeScriptName('app'), /must be a path that starts with '\/'/);
    assert.throws(() => encodeScriptName('/app/'), /does not end with '\/'/);
    const { app, seen } = recorder();
    const server = http.createServer(toNodeListener(app, { scriptName: '/caf\u00e9' }));
    await listen(server);
    try {
      await request(server).get('/caf%C3%A9/x').expect(200);
      assert.equal(seen[0]!.SCRIPT_NAME, '/caf\u00c3\u00a9');
      assert.equal(seen[0]!.PATH_INFO, '/x');
      await request(server).get('/other').expect(404);
    } finally {
      await close(server);
    }
  });

  it('refuses malformed options with errors that name them', () => {
    const app = () => [];
    assert.throws(
      () => toNodeListener(app, { trustProxy: 'garbage' }),
      /trustProxy: invalid IP address: garbage; give IP addresses, CIDR ranges/,
    );
    assert.throws(() => toNodeListener(app, { trustProxy: ['10.0.0.0/99'] }), /trustProxy: invalid range/);
    assert.throws(() => toNodeListener(app, { maxDrain: -1 }), /maxDrain must be a number of bytes >= 0/);
    assert.throws(() => toNodeListener(app, { maxBodySize: Number.NaN }), /maxBodySize must be a number >= 0/);
    assert.throws(() => toNodeListener(app, { maxRequestTarget: 0 }), /maxRequestTarget must be a number > 0/);
    assert.throws(() => toNodeListener(app, { serverPort: 'http' }), /serverPort must be digits/);
  });

  it('refuses a non-app with a clear error', () => {
    assert.throws(() => toNodeListener(42 as unknown as App), /a number is not an nsgi app/);
    assert.throws(() => toNodeListener({} as unknown as App), /object without a call\(\) method/);
  });

  it('never sends 100 Continue once the response has started', async () => {
    const app: App = async (environ, sr) => {
      const write = sr('200 OK', [['Content-Type', 'text/plain']]);
      await write(Buffer.from('first|'));
      const body = await environ['wsgi.input'].read();
      return [body];
    };
    const server = createNodeServer(app);
    await listen(server);
    try {
      const sock = await connect((server.address() as AddressInfo).port);
      sock.write('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
      const head = await readUntil(sock, (t) => t.includes('first|'));
      sock.write('data');
      const rest = await readUntil(sock, (t) => t.includes('0\r\n\r\n'));
      assert.doesNotMatch(head + rest, /100 Continue/);
      assert.match(rest, /data/);
      sock.destroy();
    } finally {
      await close(server);
    }
  });

  it('a fault while reading the request (a throwing trustProxy function) is a 500, not a crash', async () => {
    const { app, seen } = recorder();
    const log = new LogCapture();
    const trustProxy = () => {
      throw new Error('trust function exploded');
    };
    const server = http.createServer(toNodeListener(app, { trustProxy, errorLog: log }));
    await listen(server);
    try {
      await request(server).get('/').expect(500);
      assert.match(log.text, /internal error while reading the request.*trust function exploded/s);
      assert.equal(seen.length, 0);
    } finally {
      await close(server);
    }
  });

  it('passes deployer environ pairs and the underscore policy', async () => {
    const { app, seen } = recorder();
    const server = http.createServer(
      toNodeListener(app, {
        environ: { 'myapp.config': 'x', 'nsgi.signal': 'not a signal' },
        underscoreHeaders: 'refuse',
      }),
    );
    await listen(server);
    try {
      await request(server).get('/').expect(200);
      assert.equal(seen[0]!['myapp.config'], 'x');
      assert.ok(seen[0]!['nsgi.signal'] instanceof AbortSignal, 'deployer pairs cannot replace nsgi.signal');
      await request(server).get('/').set('X_Bad', '1').expect(400);
      assert.equal(seen.length, 1);
    } finally {
      await close(server);
    }
  });
});
