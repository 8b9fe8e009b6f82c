import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { sleep } from './helpers/raw-http.js';
import { run, serve, stop } from './helpers/cli.js';

/** One GET over HTTP/2 (TLS or h2c); the status, the body and the SERVER_PROTOCOL-bearing text. */
async function h2get(url: string, path: string): Promise<{ status: number; body: string }> {
  const session = http2.connect(url, { rejectUnauthorized: false });
  session.on('error', () => {});
  try {
    const stream = session.request({ ':path': path });
    const [head] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    let body = '';
    stream.setEncoding('utf8');
    for await (const chunk of stream) body += chunk as string;
    return { status: Number(head[':status']), body };
  } finally {
    session.close();
  }
}

describe('nsgi serve over TLS and HTTP/2', () => {
  const TLS = ['--key', 'test/fixtures/key.pem', '--cert', 'test/fixtures/cert.pem'];
  for (const server of ['raw', 'node', 'fastify']) {
    it(`--server ${server} with --key/--cert serves h2 and HTTP/1.1 on one port, and says so`, async () => {
      const s = await serve(['examples/index.ts', '--server', server, ...TLS]);
      try {
        assert.match(s.stdout(), /at https:\/\/127\.0\.0\.1:\d+\/ \(HTTP\/2 and HTTP\/1\.1 over TLS, by ALPN\)/);
        const h2 = await h2get(s.url, '/dispatch/dog');
        assert.deepEqual(h2, { status: 200, body: 'This is dog!' });
        const h1 = await new Promise<string>((resolve, reject) =>
          https
            .get(`${s.url}/dispatch/cat`, { rejectUnauthorized: false }, (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () => resolve(`${res.httpVersion} ${res.statusCode} ${body}`));
            })
            .on('error', reject),
        );
        assert.equal(h1, '1.1 200 This is cat!');
        await sleep(50);
        assert.match(s.stdout(), /"GET \/dispatch\/dog HTTP\/2\.0" 200 /);
      } finally {
        assert.equal(await stop(s), 0);
      }
    });
  }

  it('--server node --http2 serves h2c; raw and express refuse --http2 without TLS, naming the fix', async () => {
    const s = await serve(['examples/index.ts', '--server', 'node', '--http2']);
    try {
      assert.match(s.stdout(), /h2c, prior knowledge/);
      assert.deepEqual(await h2get(s.url, '/dispatch/dog'), { status: 200, body: 'This is dog!' });
    } finally {
      assert.equal(await stop(s), 0);
    }
    for (const server of ['raw', 'express']) {
      const r = run(['serve', 'examples/index.ts', '--server', server, '--http2', '--port', '0']);
      assert.equal(await r.exit, 2);
      assert.match(r.stderr(), /no HTTP\/2 without TLS; give --key and --cert/);
    }
    const half = run(['serve', 'examples/index.ts', '--key', 'test/fixtures/key.pem', '--port', '0']);
    assert.equal(await half.exit, 2);
    assert.match(half.stderr(), /TLS needs both --key and --cert/);
  });
});

describe('nsgi serve', () => {
  it('serves the examples index, logs one line per request, stops cleanly on SIGTERM', async () => {
    const s = await serve(['examples/index.ts']);
    try {
      const res = await fetch(`${s.url}/dispatch/dog`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'This is dog!');
      const missing = await fetch(`${s.url}/v2/nope`);
      assert.equal(missing.status, 404);
      await missing.text();
      await sleep(50);
      assert.match(s.stdout(), /127\.0\.0\.1 - - \[.+\] "GET \/dispatch\/dog HTTP\/1\.1" 200 12 [\d.]+ms\n/);
      assert.match(s.stdout(), /"GET \/v2\/nope HTTP\/1\.1" 404 /);
    } finally {
      assert.equal(await stop(s), 0);
    }
    assert.match(s.stdout(), /SIGTERM received[\s\S]*stopped/);
  });

  it('lets an in-flight request finish after SIGTERM', async () => {
    const s = await serve(['test/fixtures/apps/slow.mjs']);
    const pending = fetch(s.url + '/').then(async (r) => [r.status, await r.text()] as const);
    await sleep(150);
    s.child.kill('SIGTERM');
    const [status, body] = await pending;
    assert.equal(status, 200);
    assert.equal(body, 'finished after shutdown began');
    assert.equal(await s.exit, 0);
  });

  it('loads .mjs (default export), .js (named export) and .mts files', async () => {
    for (const [spec, expected] of [
      ['test/fixtures/apps/default-export.mjs', 'mjs default |/'],
      ['test/fixtures/apps/named.js:handler', 'js named handler'],
      ['test/fixtures/apps/typed.mts', 'mts app'],
    ] as const) {
      const s = await serve([spec, '--no-access-log']);
      try {
        const res = await fetch(s.url + '/');
        assert.equal(await res.text(), expected, spec);
        await sleep(30);
        assert.doesNotMatch(s.stdout(), /"GET \//, '--no-access-log prints no request lines');
      } finally {
        await stop(s);
      }
    }
  });

  it('mounts the app under --mount', async () => {
    const s = await serve(['test/fixtures/apps/default-export.mjs', '--mount', '/prefix']);
    try {
      assert.equal(await (await fetch(s.url + '/prefix/x')).text(), 'mjs default /prefix|/x');
      assert.equal((await fetch(s.url + '/elsewhere')).status, 404);
    } finally {
      await stop(s);
    }
  });

  it('--server express mounts the app in Express under --mount, with access lines for every request', async () => {
    const s = await serve(['examples/index.ts', '--server', 'express', '--mount', '/prefix']);
    try {
      const res = await fetch(`${s.url}/prefix/dispatch/dog`);
      assert.equal(await res.text(), 'This is dog!');
      assert.equal(res.headers.get('x-powered-by'), 'Express');
      const home = await (await fetch(`${s.url}/prefix/`)).text();
      assert.ok(home.includes('href="/prefix/v1"'), home);
      const outside = await fetch(`${s.url}/elsewhere`);
      assert.equal(outside.status, 404);
      await outside.text();
      await sleep(50);
      assert.match(s.stdout(), /"GET \/prefix\/dispatch\/dog HTTP\/1\.1" 200 12 /);
      assert.match(s.stdout(), /"GET \/elsewhere HTTP\/1\.1" 404 /);
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('--server fastify registers the app in Fastify under --mount, with access lines for every request', async () => {
    const s = await serve(['examples/index.ts', '--server', 'fastify', '--mount', '/prefix']);
    try {
      const res = await fetch(`${s.url}/prefix/dispatch/cat`);
      assert.equal(await res.text(), 'This is cat!');
      const home = await (await fetch(`${s.url}/prefix`)).text();
      assert.ok(home.includes('href="/prefix/v1"'), home);
      const outside = await fetch(`${s.url}/elsewhere`);
      assert.equal(outside.status, 404);
      await outside.text();
      await sleep(50);
      assert.match(s.stdout(), /"GET \/prefix\/dispatch\/cat HTTP\/1\.1" 200 12 /);
      assert.match(s.stdout(), /"GET \/elsewhere HTTP\/1\.1" 404 /);
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  const failures: Array<[string[], number, RegExp]> = [
    [['serve', 'nope/missing.ts'], 1, /cannot find the app file "nope\/missing\.ts"/],
    [['serve', 'test/fixtures/apps/named.js:nothing'], 1, /has no export named "nothing"; it exports: handler, helper/],
    [
      ['serve', 'test/fixtures/apps/no-app.mjs'],
      1,
      /exports neither "app" nor a default export; name the one to serve, e\.g\. nsgi serve test\/fixtures\/apps\/no-app\.mjs:first/,
    ],
    [
      ['serve', 'test/fixtures/apps/not-an-app.mjs'],
      1,
      /export "app" of .*: a number is not an nsgi app: give a function/,
    ],
    [['serve', 'test/fixtures/apps/broken.mjs'], 1, /failed to load "test\/fixtures\/apps\/broken\.mjs": SyntaxError/],
    [['serve', 'package.json'], 1, /must end in \.ts, \.mts, \.js or \.mjs/],
    [['serve', 'examples/v1.ts', '--server', 'apache'], 2, /--server must be one of raw, node, express, fastify/],
    [
      ['serve', 'examples/v1.ts', '--workers', '0'],
      2,
      /--workers must be a whole number of processes from 1 to 1024, got 0/,
    ],
    [['serve', 'nope/missing.ts', '--workers', '2'], 1, /cannot find the app file "nope\/missing\.ts"/],
    [['serve', 'examples/v1.ts', '--port', 'http'], 2, /--port must be a whole number/],
    [['serve', 'examples/v1.ts', '--mount', 'app/'], 2, /--mount must be a path that starts with '\/'/],
    [['serve'], 2, /missing the app file/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
  ];
  for (const [args, code, message] of failures) {
    it(`explains: nsgi ${args.join(' ')}`, async () => {
      const r = run(args);
      assert.equal(await r.exit, code, r.stderr());
      assert.match(r.stderr(), message);
    });
  }

  it('--server node serves the same app through node:http', async () => {
    const s = await serve(['examples/index.ts', '--server', 'node']);
    try {
      const res = await fetch(`${s.url}/dispatch/cat`);
      assert.equal(await res.text(), 'This is cat!');
      assert.match(s.stdout(), /with --server node at/);
    } finally {
      assert.equal(await stop(s), 0);
    }
  });

  it('--workers 2 serves from two processes, replaces a killed worker, and stops on SIGTERM', async () => {
    const s = await serve(['test/fixtures/apps/pid.mjs', '--workers', '2', '--no-access-log']);
    try {
      assert.match(s.stdout(), /with --server raw and 2 workers at/);
      const seen = async (n: number) => {
        const pids = new Set<number>();
        for (let i = 0; i < n; i++) {
          // A new connection each time, so the kernel spreads them over the workers.
          const res = await fetch(s.url + '/', { headers: { Connection: 'close' } });
          const [pid, multiprocess] = (await res.text()).split(' ');
          assert.equal(multiprocess, 'true');
          pids.add(Number(pid));
        }
        return pids;
      };
      const before = await seen(40);
      assert.ok(before.size >= 1);
      const victim = [...before][0]!;
      process.kill(victim, 'SIGKILL');
      // A replacement boots the CLI afresh, which takes a while on a loaded machine.
      const deadline = Date.now() + 20000;
      let after = new Set<number>();
      let failure: unknown;
      while (Date.now() < deadline) {
        await sleep(200);
        after = await seen(20).catch((err: unknown) => ((failure = err), new Set<number>()));
        if (after.size === 2 && !after.has(victim)) break;
      }
      assert.ok(!after.has(victim), 'the killed worker no longer answers');
      assert.equal(
        after.size,
        2,
        `a replacement worker serves beside the survivor (last failure: ${String((failure as Error)?.cause ?? failure)}; stderr: ${s.stderr()})`,
      );
      assert.match(s.stderr(), new RegExp(`worker ${victim} died \\(SIGKILL\\); starting a new one`));
    } finally {
      assert.equal(await stop(s), 0);
    }
    assert.match(s.stdout(), /stopping 2 workers/);
  });

  for (const server of ['raw', 'node', 'express', 'fastify']) {
    it(`--server ${server} carries the chat example's WebSocket, logs a 101 line and gives open sockets 1001 on SIGTERM`, async () => {
      const s = await serve(['examples/chat.ts', '--server', server]);
      const url = `${s.url.replace('http', 'ws')}/ws`;
      const [a, b] = [new WebSocket(url, 'chat'), new WebSocket(url, 'chat')];
      await Promise.all([once(a, 'open'), once(b, 'open')]);
      const got = once(b, 'message');
      a.send('hi from the CLI');
      assert.equal(String((await got)[0]), 'hi from the CLI');
      a.close();
      await once(a, 'close');
      await sleep(100);
      assert.match(s.stdout(), /"GET \/ws HTTP\/1\.1" 101 0 [\d.]+ms\n/);
      const closed = once(b, 'close');
      assert.equal(await stop(s), 0);
      assert.equal((await closed)[0], 1001);
    });
  }

  it('reports a port in use', async () => {
    const s = await serve(['examples/v1.ts']);
    try {
      const port = new URL(s.url).port;
      const r = run(['serve', 'examples/v1.ts', '--port', port]);
      assert.equal(await r.exit, 1);
      assert.match(r.stderr(), new RegExp(`127\\.0\\.0\\.1:${port} is already in use; pick another port with --port`));
    } finally {
      await stop(s);
    }
  });

  it('prints help and version', async () => {
    const h = run(['--help']);
    assert.equal(await h.exit, 0);
    assert.match(h.stdout(), /Usage: nsgi serve <file>\[:<export>\]/);
    const v = run(['--version']);
    assert.equal(await v.exit, 0);
    assert.match(v.stdout(), /^\d+\.\d+\.\d+\n$/);
  });
});
