import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  EnvironRequest,
  HeldBodyResponse,
  headerPairs,
  installStandIns,
  responseParts,
} from '../../adapters/fetch-objects.js';
import { fromFetchHandler } from '../../adapters/fetch.js';
import { HttpError } from '../../src/errors.js';
import type { Environ } from '../../src/types.js';

const RealResponse = globalThis.Response;
const RealRequest = globalThis.Request;

/** Just the environ keys the Request stand-in reads. */
function environ(method: string, headers: Array<[string, string]> = [], body = ''): Environ {
  let left = Buffer.from(body);
  const cookies = headers.filter(([n]) => n.toLowerCase() === 'cookie').map(([, v]) => v);
  return {
    REQUEST_METHOD: method,
    HTTP_COOKIE: cookies.length > 0 ? cookies.join('; ') : undefined,
    'nsgi.raw_headers': headers,
    'nsgi.signal': new AbortController().signal,
    'wsgi.input': {
      async read(size?: number) {
        const n = size === undefined || size < 0 ? left.length : Math.min(size, left.length);
        const out = left.subarray(0, n);
        left = left.subarray(n);
        return out;
      },
    },
  } as unknown as Environ;
}

describe('EnvironRequest (the Request fromFetchHandler passes)', () => {
  it('is a Request: instanceof, method normalized as Fetch does, forbidden methods refused', () => {
    const r = new EnvironRequest(environ('get'), 'http://example.com/');
    assert.ok(r instanceof RealRequest);
    assert.equal(r.method, 'GET');
    assert.equal(
      new EnvironRequest(environ('patch'), 'http://example.com/').method,
      'patch',
      'Fetch upper-cases only the six standard methods',
    );
    assert.equal(new EnvironRequest(environ('PURGE'), 'http://example.com/').method, 'PURGE');
    assert.throws(
      () => new EnvironRequest(environ('TRACE'), 'http://example.com/'),
      (err: unknown) => err instanceof HttpError && err.status === 501 && /TRACE is unsupported/.test(err.message),
    );
  });

  it('property: its url is what new Request(url).url would be', () => {
    const pathChar = fc.constantFrom(...'abcXYZ019-._~!$&\'()*+,;=:@/%?#[] "<>^`{|}é'.split(''));
    fc.assert(
      fc.property(
        fc.constantFrom(
          'example.com',
          'EXAMPLE.com',
          '127.0.0.1:8080',
          'example.com:80',
          'h.test:443',
          '[::1]:3000',
          'h.test:080',
          'h.test:99999',
          '127.1',
          '127.1.',
          '1.2.3.4',
          '01.2.3.4',
          '0x7f.0.0.1',
          'a.b.',
          'a..b',
          'a.0x1',
          'a.1',
          '256.1.1.1',
          'xn--nxasmq6b.test',
        ),
        fc.array(pathChar, { maxLength: 30 }).map((cs) => `/${cs.join('')}`),
        fc.constantFrom('http', 'https'),
        (host, target, scheme) => {
          const url = `${scheme}://${host}${target}`;
          let expected: string;
          try {
            expected = new RealRequest(url).url;
          } catch {
            return; // not a URL at all: nothing to compare
          }
          assert.equal(new EnvironRequest(environ('GET'), url).url, expected);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('headers: as received, Cookie lines joined with "; ", hop-by-hop fields left out', () => {
    const r = new EnvironRequest(
      environ('GET', [
        ['Host', 'a.test'],
        ['Cookie', 'a=1'],
        ['X-Many', '1'],
        ['Connection', 'keep-alive'],
        ['x-many', '2'],
        ['Cookie', 'b=2'],
      ]),
      'http://a.test/',
    );
    assert.equal(r.headers.get('cookie'), 'a=1; b=2');
    assert.equal(r.headers.get('x-many'), '1, 2');
    assert.equal(r.headers.has('connection'), false);
    assert.equal(r.headers, r.headers, 'one Headers per request');
  });

  it('signal is nsgi.signal', () => {
    const env = environ('GET');
    assert.equal(new EnvironRequest(env, 'http://a.test/').signal, env['nsgi.signal']);
  });

  it('text(), json(), arrayBuffer(), bytes() read wsgi.input once; a second read is refused', async () => {
    const r = new EnvironRequest(environ('POST', [], '{"a":[1,"é"]}'), 'http://a.test/');
    assert.equal(r.bodyUsed, false);
    assert.deepEqual(await r.json(), { a: [1, 'é'] });
    assert.equal(r.bodyUsed, true);
    await assert.rejects(r.text(), /Body is unusable/);
    assert.throws(() => r.clone(), /Body is unusable/);
    const body = r.body!;
    assert.equal(body.locked, true, 'the body of a used request is a used stream');
    const b = new EnvironRequest(environ('PUT', [], 'bytes'), 'http://a.test/');
    assert.deepEqual(Buffer.from(await b.bytes()), Buffer.from('bytes'));
    const ab = await new EnvironRequest(environ('PUT', [], 'xyz'), 'http://a.test/').arrayBuffer();
    assert.ok(ab instanceof ArrayBuffer);
    assert.equal(Buffer.from(ab).toString(), 'xyz');
    assert.equal(
      await new EnvironRequest(environ('GET', [], 'ignored'), 'http://a.test/').text(),
      '',
      'GET has no body',
    );
  });

  it('body, clone(), formData(), blob() and the other attributes come from a real Request made on demand', async () => {
    const r = new EnvironRequest(
      environ('POST', [['Content-Type', 'application/x-www-form-urlencoded']], 'a=1&b=two'),
      'http://a.test/x',
    ) as unknown as Request;
    assert.equal(r.mode, 'cors');
    assert.equal(r.credentials, 'same-origin');
    assert.equal(r.redirect, 'follow');
    const copy = r.clone();
    assert.ok(copy instanceof RealRequest);
    const form = await r.formData();
    assert.equal(form.get('b'), 'two');
    assert.equal(await copy.text(), 'a=1&b=two');
    const streamed = new EnvironRequest(environ('POST', [], 'streamed'), 'http://a.test/');
    const chunks: Buffer[] = [];
    for await (const chunk of streamed.body!) chunks.push(Buffer.from(chunk));
    assert.equal(Buffer.concat(chunks).toString(), 'streamed');
    assert.equal(
      await new EnvironRequest(environ('POST', [], 'blob'), 'http://a.test/').blob().then((b) => b.text()),
      'blob',
    );
  });
});

describe('HeldBodyResponse (the global Response while fromFetchHandler is in use)', () => {
  it('is a Response both ways; statics still work', async () => {
    const held = new HeldBodyResponse('x') as unknown as Response;
    assert.ok(held instanceof RealResponse);
    assert.ok(new RealResponse('x') instanceof (HeldBodyResponse as unknown as typeof Response));
    assert.ok(held instanceof (HeldBodyResponse as unknown as typeof Response));
    const json = (HeldBodyResponse as unknown as typeof Response).json({ a: 1 });
    assert.deepEqual(await json.json(), { a: 1 });
  });

  it('holds string, byte and empty bodies; a stream body makes the real Response at once', () => {
    const held = (body: unknown, init?: ResponseInit) =>
      responseParts(new HeldBodyResponse(body as never, init) as unknown as Response);
    assert.deepEqual(held('s'), {
      status: 200,
      statusText: '',
      headers: [['content-type', 'text/plain;charset=UTF-8']],
      bytes: Buffer.from('s'),
    });
    const bytes = new Uint8Array([1, 2]);
    assert.equal(held(bytes).bytes, bytes);
    assert.equal(held(null, { status: 204 }).bytes, null);
    assert.equal(held(new ReadableStream()).bytes, undefined, 'a stream body is read through the real Response');
    assert.equal(responseParts(new RealResponse('x')).bytes, undefined);
  });

  it("copies another Response's headers as the real one does, and reports what its own headers say", () => {
    const first = new HeldBodyResponse('one', { headers: { 'X-A': '1' } }) as unknown as Response;
    const second = new HeldBodyResponse('two', { headers: first.headers }) as unknown as Response;
    second.headers.set('x-b', '2');
    assert.equal(first.headers.has('x-b'), false, 'the first keeps its own headers');
    assert.deepEqual(responseParts(second).headers, [
      ['content-type', 'text/plain;charset=UTF-8'],
      ['x-a', '1'],
      ['x-b', '2'],
    ]);
    const typed = new HeldBodyResponse('<p>', {
      headers: new Headers({ 'content-type': 'text/html' }),
    }) as unknown as Response;
    assert.deepEqual(responseParts(typed).headers, [['content-type', 'text/html']]);
    assert.equal(typed.headers.get('content-type'), 'text/html');
  });

  it('refuses what the real Response refuses, the same way', () => {
    assert.throws(() => new HeldBodyResponse('x', { status: 600 }), RangeError);
    assert.throws(() => new HeldBodyResponse('x', { status: 204 }), TypeError);
    assert.throws(() => new HeldBodyResponse('x', { statusText: 'bad\nreason' }), TypeError);
  });

  it('answers like the real one: status, ok, headers (with the default text type), body, text(), clone()', async () => {
    for (const make of [
      (b: string, i?: ResponseInit) => new RealResponse(b, i),
      (b: string, i?: ResponseInit) => new HeldBodyResponse(b, i) as unknown as Response,
    ]) {
      const r = make('héllo', { status: 201, statusText: 'Made', headers: { 'X-A': ' 1 ' } });
      assert.equal(r.status, 201);
      assert.equal(r.statusText, 'Made');
      assert.equal(r.ok, true);
      assert.equal(r.type, 'default');
      assert.equal(r.redirected, false);
      assert.equal(r.headers.get('content-type'), 'text/plain;charset=UTF-8');
      assert.equal(r.headers.get('x-a'), '1');
      assert.equal(await r.clone().text(), 'héllo');
      assert.equal(r.bodyUsed, false);
      assert.equal(await r.text(), 'héllo');
      assert.equal(r.bodyUsed, true);
    }
  });

  it('headerPairs reads every HeadersInit form like Headers, Set-Cookie lines apart', () => {
    const h = new Headers([
      ['Set-Cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['X-B', 'v'],
    ]);
    assert.deepEqual(headerPairs(h), [
      ['x-b', 'v'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ]);
    assert.deepEqual(headerPairs([['X-A', '\t1 ']]), [['x-a', '1']]);
    assert.deepEqual(headerPairs({ 'X-C': '3' }), [['x-c', '3']]);
    assert.deepEqual(headerPairs(undefined), []);
    assert.throws(() => headerPairs([['only-name']]), /\[name, value\] pair/);
  });
});

describe('fromFetchHandler and the global Response', () => {
  it('overrideGlobalObjects: false leaves it alone; by default it holds bodies, once', () => {
    fromFetchHandler(() => new Response(''), { overrideGlobalObjects: false });
    assert.equal(globalThis.Response, RealResponse);
    fromFetchHandler(() => new Response(''));
    assert.equal(globalThis.Response, HeldBodyResponse);
    fromFetchHandler(() => new Response(''));
    assert.equal(globalThis.Response, HeldBodyResponse);
  });
});

describe('the stand-ins work wherever the real objects do', () => {
  let StandInAwareRequest = globalThis.Request;
  let standInAwareFetch = globalThis.fetch;
  before(() => {
    installStandIns();
    StandInAwareRequest = globalThis.Request;
    standInAwareFetch = globalThis.fetch;
  });

  it('a library that installs its own Request after them is wrapped in turn', () => {
    const saved = globalThis.Request;
    try {
      class OtherRequest extends RealRequest {}
      globalThis.Request = OtherRequest;
      installStandIns();
      assert.notEqual(globalThis.Request, OtherRequest);
      const copy = new globalThis.Request(
        new EnvironRequest(environ('GET'), 'http://example.com/') as unknown as Request,
      );
      assert.ok(copy instanceof OtherRequest);
      assert.equal(copy.url, 'http://example.com/');
    } finally {
      globalThis.Request = saved;
    }
  });

  it('new Request(standIn) and new Request(standIn, init) copy it, body included; instanceof holds for both classes', async () => {
    const standIn = new EnvironRequest(
      environ(
        'POST',
        [
          ['X-A', '1'],
          ['Content-Type', 'text/plain'],
        ],
        'the body',
      ),
      'http://example.com/p?q=1',
    );
    assert.ok(standIn instanceof StandInAwareRequest);
    const copy = new StandInAwareRequest(standIn, { headers: { 'x-b': '2' } });
    assert.ok(copy instanceof RealRequest && copy instanceof StandInAwareRequest);
    assert.equal(copy.method, 'POST');
    assert.equal(copy.url, 'http://example.com/p?q=1');
    assert.equal(copy.headers.get('x-b'), '2');
    assert.equal(await copy.text(), 'the body');
    assert.equal(standIn.bodyUsed, true, 'the copy took the body, as with a real Request');
    const plain = new StandInAwareRequest(
      new EnvironRequest(environ('GET', [['X-A', '1']]), 'http://example.com/') as unknown as Request,
    );
    assert.equal(plain.headers.get('x-a'), '1');
    // A body read already cannot be copied without a new one, as with a real Request.
    const read = new EnvironRequest(environ('POST', [], 'x'), 'http://example.com/');
    await read.text();
    assert.throws(() => new StandInAwareRequest(read as unknown as Request), TypeError);
    assert.equal(await new StandInAwareRequest(read as unknown as Request, { body: 'new' }).text(), 'new');
  });

  it('fetch(standIn) sends it', async () => {
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.end(`${req.method} ${req.url} ${String(req.headers['x-a'])} ${body}`));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/there?x=1`;
      const standIn = new EnvironRequest(environ('PUT', [['X-A', 'sent']], 'payload'), url);
      const res = await standInAwareFetch(standIn as unknown as Request);
      assert.equal(await res.text(), 'PUT /there?x=1 sent payload');
    } finally {
      server.close();
    }
  });

  it('new Response(body, heldResponse) takes its status, reason and headers', async () => {
    const held = new HeldBodyResponse('held', {
      status: 201,
      statusText: 'Made',
      headers: { 'x-a': '1' },
    }) as unknown as Response;
    const copy = new RealResponse('other', held);
    assert.equal(copy.status, 201);
    assert.equal(copy.statusText, 'Made');
    assert.equal(copy.headers.get('x-a'), '1');
    assert.equal(
      copy.headers.get('content-type'),
      'text/plain;charset=UTF-8',
      'the held headers, default type included',
    );
    const rewrapped = new RealResponse(held.body, held);
    assert.equal(await rewrapped.text(), 'held');
    assert.throws(() => held.clone(), TypeError, 'its body went to the new Response');
  });

  it('overrideGlobalObjects: false hands the handler a real Request and leaves the globals alone', async () => {
    const before = [globalThis.Request, globalThis.Response, globalThis.fetch];
    let seen: Request | undefined;
    const app = fromFetchHandler(
      (request) => {
        seen = request;
        return new RealResponse('ok');
      },
      { overrideGlobalObjects: false },
    );
    const env = {
      ...environ('GET', [['Host', 'h']]),
      'wsgi.url_scheme': 'http',
      HTTP_HOST: 'h',
      SCRIPT_NAME: '',
      PATH_INFO: '/',
      QUERY_STRING: '',
      REQUEST_URI: '/',
    } as unknown as Environ;
    await app(env, () => () => Promise.resolve());
    assert.ok(seen !== undefined && !(seen instanceof EnvironRequest));
    assert.equal(new RealRequest(seen).url, 'http://h/');
    assert.deepEqual([globalThis.Request, globalThis.Response, globalThis.fetch], before);
  });
});
