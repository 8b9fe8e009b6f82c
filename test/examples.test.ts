/** Every seed example answers as the tutorial describes, on its own and mounted in the index. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { app as classApp } from '../examples/class-app.js';
import { app as dispatch } from '../examples/dispatch.js';
import { app as functionApp } from '../examples/function-app.js';
import { app as index } from '../examples/index.js';
import { app as ipBlock, IPAllowlistMiddleware } from '../examples/ip-block.js';
import { app as v1 } from '../examples/v1.js';
import { app as v2 } from '../examples/v2.js';
import { HOSTS } from './helpers/hosts.js';

const HELLO = '<p>hello world</p>';

for (const { name, server } of HOSTS)
  describe(`examples on ${name}`, () => {
    it('v1 serves the hello-world page for any path', async () => {
      for (const path of ['/', '/anything/at/all?x=1']) {
        const res = await request(server(v1)).get(path).expect(200).expect('Content-Type', 'text/html; charset=utf-8');
        assert.match(res.text, /<title>simple server<\/title>/);
        assert.ok(res.text.includes(HELLO));
        assert.equal(res.headers.server, 'simple server');
      }
    });

    it('v2 answers /, /name and a 404 in Chinese', async () => {
      const s = server(v2);
      assert.ok((await request(s).get('/').expect(200)).text.includes(HELLO));
      assert.ok((await request(s).get('/name').expect(200)).text.includes('<p>my name is sheng</p>'));
      const missing = await request(s).get('/other').expect(404);
      assert.ok(missing.text.includes('<p>你访问的资源不存在</p>'));
      assert.equal(Number(missing.headers['content-length']), Buffer.byteLength(missing.text));
    });

    it('the function app and the class app', async () => {
      await request(server(functionApp)).get('/').expect(200, 'This is an nsgi application!');
      await request(server(classApp)).get('/x').expect(200, 'Hello world!\n');
    });

    it('the IP allow-list lets loopback in and refuses other addresses with 403', async () => {
      await request(server(ipBlock)).get('/test').expect(200, 'This is an nsgi application!');
      // A trusted proxy in front reports the real client; 10.10.10.2 is not on the list.
      const proxied = server(ipBlock, { trustProxy: 'loopback' });
      await request(proxied).get('/test').set('X-Forwarded-For', '10.10.10.2').expect(403, 'Forbidden');
      await request(proxied).get('/test').set('X-Forwarded-For', '::ffff:127.0.0.1').expect(200);
      const v6only = new IPAllowlistMiddleware(functionApp, ['::1']);
      await request(server(v6only)).get('/').expect(403, 'Forbidden');
      assert.throws(() => new IPAllowlistMiddleware(functionApp, ['localhost']), /"localhost" is not an IP address/);
    });

    it('path dispatch: /dog, /cat, and 404 for the rest, behind the allow-list', async () => {
      const s = server(dispatch);
      await request(s).get('/dog').expect(200, 'This is dog!');
      await request(s).get('/cat').expect(200, 'This is cat!');
      await request(s).get('/monkey').expect(404, 'Not Found');
      await request(s).get('/constructor').expect(404, 'Not Found');
      await request(server(dispatch, { trustProxy: 'loopback' }))
        .get('/dog')
        .set('X-Forwarded-For', '10.10.10.2')
        .expect(403);
    });

    it('the index mounts every example and links to each', async () => {
      const s = server(index);
      const home = await request(s).get('/').expect(200);
      for (const href of ['/v1', '/v2/name', '/function', '/class', '/ip-block', '/dispatch/dog'])
        assert.ok(home.text.includes(`href="${href}"`), href);
      assert.ok((await request(s).get('/v1').expect(200)).text.includes(HELLO));
      assert.ok((await request(s).get('/v2').expect(200)).text.includes(HELLO));
      assert.ok((await request(s).get('/v2/name').expect(200)).text.includes('my name is sheng'));
      await request(s).get('/v2/zzz').expect(404);
      await request(s).get('/function').expect(200, 'This is an nsgi application!');
      await request(s).get('/class').expect(200, 'Hello world!\n');
      await request(s).get('/ip-block').expect(200);
      await request(s).get('/dispatch/cat').expect(200, 'This is cat!');
      await request(s).get('/dispatch/monkey').expect(404, 'Not Found');
      await request(s).get('/v1x').expect(404);
    });

    it('the index works under a mount prefix too', async () => {
      const s = server(index, { mount: '/examples' });
      const home = await request(s).get('/examples/').expect(200);
      assert.ok(home.text.includes('href="/examples/dispatch/dog"'));
      await request(s).get('/examples/dispatch/dog').expect(200, 'This is dog!');
    });
  });

describe('examples/express-site.ts', () => {
  it('serves the seed examples under /legacy next to Express routes and its JSON parser', async () => {
    const { site } = await import('../examples/express-site.js');
    assert.equal((await request(site).get('/legacy/dispatch/dog').expect(200)).text, 'This is dog!');
    assert.ok((await request(site).get('/legacy/').expect(200)).text.includes('href="/legacy/v1"'));
    await request(site)
      .get('/legacy/express-route')
      .expect(200, /this Express route ran/);
    await request(site).get('/api/hello').expect(200, { hello: 'from Express' });
    await request(site)
      .post('/api/echo')
      .send({ a: [1, 2] })
      .expect(200, { received: { a: [1, 2] } });
  });
});

describe('examples/fastify-site.ts', () => {
  it('serves the seed examples under /legacy next to Fastify routes, with Fastify hooks applied', async () => {
    const { site } = await import('../examples/fastify-site.js');
    await site.ready();
    const dog = await request(site.server).get('/legacy/dispatch/dog').expect(200, 'This is dog!');
    assert.equal(dog.headers['x-served-by'], 'fastify');
    assert.ok((await request(site.server).get('/legacy').expect(200)).text.includes('href="/legacy/v1"'));
    await request(site.server).get('/api/hello').expect(200, { hello: 'from Fastify' });
    await request(site.server)
      .post('/api/echo')
      .send({ a: [1, 2] })
      .expect(200, { received: { a: [1, 2] } });
    await site.close();
  });
});
