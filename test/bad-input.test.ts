/**
 * Every mistake an app can make, against one long-lived server: each gets a clear log line and a
 * correct response or abort, and the server keeps serving the next request.
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createNodeServer } from '../adapters/node.js';
import type { App, Body } from '../src/types.js';
import { LogCapture } from './conformance/harness.js';
import { rawRequest } from './helpers/raw-http.js';

const text = (s: string) => Buffer.from(s);
const plain: [string, string][] = [['Content-Type', 'text/plain']];

const routes: Record<string, App> = {
  '/bad-status': (_e, sr) => (sr('200OK', plain), [text('x')]),
  '/bad-header': (_e, sr) => (sr('200 OK', [['Content-Type', 'text/plain\r\nX-Injected: 1']]), [text('x')]),
  '/string-body': (_e, sr) => (sr('200 OK', plain), 'a string' as unknown as Body),
  '/string-chunk': (_e, sr) => (sr('200 OK', plain), ['a string'] as unknown as Body),
  '/throw-before': (_e, sr) => {
    sr('200 OK', plain);
    throw new Error('failed before headers');
  },
  '/throw-after': (_e, sr) => {
    sr('200 OK', plain);
    return (function* () {
      yield text('partial');
      throw new Error('failed after headers');
    })();
  },
  '/twice': (_e, sr) => {
    sr('200 OK', plain);
    sr('404 Not Found', plain);
    return [text('x')];
  },
  '/never-starts': () => [text('no start_response')],
  '/echo': async (environ, sr) => {
    const body = await environ['wsgi.input'].read();
    sr('200 OK', plain);
    return [body];
  },
};

const app: App = (environ, sr) => {
  const route = routes[environ.PATH_INFO];
  if (route) return route(environ, sr);
  sr('200 OK', plain);
  return [text('alive')];
};

describe('bad input from apps and clients', () => {
  const log = new LogCapture();
  const server = createNodeServer(app, { errorLog: log, maxBodySize: 1000 });
  let port = 0;
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const cases: Array<[string, number, RegExp]> = [
    ['/bad-status', 500, /invalid status "200OK".*three digits/],
    ['/bad-header', 500, /invalid value for header "Content-Type".*CR, LF/],
    ['/string-body', 500, /returned a string.*iterable of Uint8Array/],
    ['/string-chunk', 500, /yielded a string.*Buffer\.from/],
    ['/throw-before', 500, /failed before headers/],
    ['/twice', 500, /second time without excInfo/],
    ['/never-starts', 500, /before calling start_response/],
  ];
  for (const [path, status, message] of cases) {
    it(`${path}: ${status} with a log line that names the fix, then keeps serving`, async () => {
      log.clear();
      const res = await request(`http://127.0.0.1:${port}`).get(path);
      assert.equal(res.status, status);
      assert.equal(res.text, 'Internal Server Error\n', 'nothing of the app leaks to the client');
      assert.match(log.text, message);
      await request(`http://127.0.0.1:${port}`).get('/').expect(200, 'alive');
    });
  }

  it('/throw-after: the response is aborted (truncated), logged, and the server keeps serving', async () => {
    log.clear();
    const r = await rawRequest(port, 'GET /throw-after HTTP/1.1\r\nHost: h\r\n\r\n', {
      waitForClose: true,
      timeout: 3000,
    });
    assert.equal(r.closed, true, r.text);
    assert.equal(r.responses[0]!.status, 200);
    assert.equal(r.truncated, true);
    assert.match(log.text, /error after the response started.*failed after headers/s);
    await request(`http://127.0.0.1:${port}`).get('/').expect(200, 'alive');
  });

  it('a body over the limit gets 413 before the app runs, and the server keeps serving', async () => {
    const res = await request(`http://127.0.0.1:${port}`).post('/echo').send('x'.repeat(1001));
    assert.equal(res.status, 413);
    assert.match(res.text, /exceeds the limit of 1000 bytes/);
    await request(`http://127.0.0.1:${port}`).post('/echo').send('x'.repeat(1000)).expect(200, 'x'.repeat(1000));
  });
});
