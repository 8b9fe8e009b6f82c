import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toApp, whyNotApp } from '../../src/app-forms.js';
import { InterfaceError } from '../../src/errors.js';
import { FileWrapperBody } from '../../src/file-wrapper.js';
import { mergedHeader, mergeVary } from '../../src/header-merge.js';
import { decodeNative, encodeNative, isNative, percentDecodeNative, quoteNativePath } from '../../src/native.js';
import { parseResponseHead } from '../../src/response-head.js';
import { mount } from '../../src/middleware/mount.js';
import type { App, Bytes, Environ, StartResponse } from '../../src/types.js';

describe('native strings', () => {
  it('percent-decodes losslessly to latin-1 and quotes back', () => {
    assert.equal(percentDecodeNative('/caf%C3%A9'), '/caf\u00c3\u00a9');
    assert.equal(percentDecodeNative('/%ff%00x'), '/\u00ff\u0000x');
    assert.equal(percentDecodeNative('/%zz%4'), '/%zz%4');
    assert.equal(percentDecodeNative('/a+b%2Fc'), '/a+b/c');
    assert.equal(percentDecodeNative('%'), '%');
    assert.equal(quoteNativePath('/caf\u00c3\u00a9 x'), '/caf%C3%A9%20x');
    assert.equal(percentDecodeNative(quoteNativePath('/\u00ff\u0000%')), '/\u00ff\u0000%');
    assert.throws(() => quoteNativePath('/€'), /native string/);
  });
  it('converts between native strings and Unicode', () => {
    assert.equal(decodeNative(encodeNative('/café ☃')), '/café ☃');
    assert.equal(isNative('\u00ff'), true);
    assert.equal(isNative('\u0100'), false);
  });
});

describe('parseResponseHead', () => {
  it('returns code, reason and Content-Length', () => {
    const h = parseResponseHead('404 Not Found', [['Content-Length', ' 12 ']]);
    assert.equal(h.code, 404);
    assert.equal(h.reason, 'Not Found');
    assert.equal(h.contentLength, 12);
  });
  it('accepts HTAB and obs-text in values, rejects the rest with InterfaceError', () => {
    parseResponseHead('200 OK', [['X-A', 'a\tb\u00e9']]);
    for (const [headers, code] of [
      [
        [
          ['Content-Length', '1'],
          ['content-length', '1'],
        ],
        'ERR_NSGI_INVALID_CONTENT_LENGTH',
      ],
      [[['Content-Length', '-1']], 'ERR_NSGI_INVALID_CONTENT_LENGTH'],
      [[['X-A', 'a\x7fb']], 'ERR_NSGI_INVALID_HEADER_VALUE'],
      [[['X-A', 'a\nb']], 'ERR_NSGI_INVALID_HEADER_VALUE'],
      [[['Keep-Alive', 'timeout=5']], 'ERR_NSGI_HOP_BY_HOP_HEADER'],
      [[['Trailers', 'x']], 'ERR_NSGI_HOP_BY_HOP_HEADER'],
      [new Map(), 'ERR_NSGI_INVALID_HEADERS'],
    ] as const) {
      assert.throws(
        () => parseResponseHead('200 OK', headers as never),
        (e: unknown) => e instanceof InterfaceError && e.code === code,
        JSON.stringify(headers),
      );
    }
  });
  it('checks each response in full, whatever the one before it was (repeats are remembered by position)', () => {
    const good: Array<[string, string]> = [
      ['Content-Type', 'text/plain'],
      ['X-A', 'a'],
      ['Content-Length', '5'],
    ];
    for (let i = 0; i < 3; i++) assert.equal(parseResponseHead('200 OK', good).contentLength, 5);
    const cases: Array<[Array<[string, string]>, string]> = [
      [
        [
          ['Content-Type', 'text/plain'],
          ['X-A', 'a\nb'],
        ],
        'ERR_NSGI_INVALID_HEADER_VALUE',
      ],
      [
        [
          ['Content-Type', 'text/plain'],
          ['X A', 'a'],
        ],
        'ERR_NSGI_INVALID_HEADER_NAME',
      ],
      [
        [
          ['Content-Type', 'text/plain'],
          ['Connection', 'a'],
        ],
        'ERR_NSGI_HOP_BY_HOP_HEADER',
      ],
      [
        [
          ['Content-Type', 'text/plain'],
          ['X-A', 'a'],
          ['Content-Length', 'x'],
        ],
        'ERR_NSGI_INVALID_CONTENT_LENGTH',
      ],
    ];
    for (const [headers, code] of cases) {
      for (let i = 0; i < 2; i++) {
        assert.throws(
          () => parseResponseHead('200 OK', headers),
          (e: unknown) => e instanceof InterfaceError && e.code === code,
        );
        assert.equal(parseResponseHead('200 OK', good).contentLength, 5);
      }
    }
    assert.equal(parseResponseHead('201 Created', good).code, 201);
    assert.throws(
      () => parseResponseHead('200  OK', good),
      (e: unknown) => e instanceof InterfaceError && e.code === 'ERR_NSGI_INVALID_STATUS',
    );
    assert.equal(parseResponseHead('200 OK', good).reason, 'OK');
  });
});

describe('app forms', () => {
  const sr: StartResponse = () => async () => undefined;
  const env = {} as Environ;
  it('a function is used as it is', () => {
    const f = () => [];
    assert.equal(toApp(f), f);
  });
  it('a class is constructed per request and its instance is the body', () => {
    class A implements Iterable<Bytes> {
      constructor(
        public environ: Environ,
        public sr: StartResponse,
      ) {}
      *[Symbol.iterator]() {}
    }
    const body = toApp(A)(env, sr);
    assert.ok(body instanceof A);
    assert.equal(body.environ, env);
  });
  it('an object with call() is called with itself as this', () => {
    const obj = {
      greeting: 'hi',
      call(this: { greeting: string }) {
        return [Buffer.from(this.greeting)];
      },
    };
    const body = toApp(obj)(env, sr) as Buffer[];
    assert.equal(body[0]!.toString(), 'hi');
  });
  it('anything else is explained', () => {
    assert.match(whyNotApp('x')!, /a string is not an nsgi app/);
    assert.match(whyNotApp(null)!, /null is not an nsgi app/);
    assert.match(whyNotApp([])!, /an array is not an nsgi app/);
    assert.equal(
      whyNotApp(() => []),
      undefined,
    );
  });
});

describe('FileWrapperBody', () => {
  it('reads blocks until empty and closes the file once', async () => {
    let closed = 0;
    const data = Buffer.from('abcdefg');
    let pos = 0;
    const w = new FileWrapperBody(
      {
        read: (n = 1) => {
          const out = data.subarray(pos, pos + n);
          pos += out.length;
          return out;
        },
        close: () => void closed++,
      },
      3,
    );
    const parts: string[] = [];
    for await (const c of w) parts.push(Buffer.from(c).toString());
    assert.deepEqual(parts, ['abc', 'def', 'g']);
    await w.close();
    await w.close();
    assert.equal(closed, 1);
    assert.throws(() => new FileWrapperBody({} as never), /read\(size\) method/);
    assert.throws(() => new FileWrapperBody({ read: () => data }, 0), /positive integer/);
  });
});

describe('mount prefixes', () => {
  it('mount() moves the matched segments in place and never reads nsgi.signal', () => {
    let reads = 0;
    let seen: Environ | undefined;
    const inner: App = (environ, sr) => {
      seen = environ;
      sr('200 OK', []);
      return [];
    };
    const environ = { SCRIPT_NAME: '/app', PATH_INFO: '/api/v1/users' } as unknown as Environ;
    Object.defineProperty(environ, 'nsgi.signal', {
      get: () => (reads++, new AbortController().signal),
      enumerable: true,
      configurable: true,
    });
    mount({ '/api/v1': inner })(environ, () => () => Promise.resolve());
    assert.equal(reads, 0);
    assert.equal(seen!.SCRIPT_NAME, '/app/api/v1');
    assert.equal(seen!.PATH_INFO, '/users');
  });

  it('mount() refuses a prefix that the hosts would refuse, with the same words', () => {
    assert.throws(
      () => mount({ 'api/': () => [] }),
      /a mount\(\) prefix must be a path that starts with '\/' and does not end with '\/'/,
    );
    assert.throws(() => mount({ '/api/': () => [] }), /does not end with '\/'/);
  });
});

describe('the header-merge rule (SPEC §8.6)', () => {
  it('the app wins on a clash; Set-Cookie lines and the app’s own repeated names add up', () => {
    assert.equal(mergedHeader('x-frame-options', 'SAMEORIGIN', 'DENY', false), 'DENY');
    assert.deepEqual(mergedHeader('set-cookie', 'a=1', 'b=2', false), ['a=1', 'b=2']);
    assert.deepEqual(mergedHeader('set-cookie', ['a=1', 'b=2'], 'c=3', false), ['a=1', 'b=2', 'c=3']);
    assert.deepEqual(mergedHeader('link', '</a>', '</b>', true), ['</a>', '</b>']);
    assert.equal(mergedHeader('content-length', 10, '12', false), '12');
  });

  it('Vary: the field names of both, in order, each once without regard to case; * takes all', () => {
    assert.equal(mergeVary('Origin', 'Accept-Encoding'), 'Origin, Accept-Encoding');
    assert.equal(mergeVary('Origin, Accept', 'accept, Cookie'), 'Origin, Accept, Cookie');
    assert.equal(mergeVary(['Origin', 'Accept'], 'Origin'), 'Origin, Accept');
    assert.equal(mergeVary('Origin', '*'), '*');
    assert.equal(mergeVary('*', 'Origin'), '*');
    assert.equal(mergeVary(' , Origin ,', ''), 'Origin');
    assert.equal(mergedHeader('vary', 'Origin', 'Accept-Encoding', true), 'Origin, Accept-Encoding');
  });
});
