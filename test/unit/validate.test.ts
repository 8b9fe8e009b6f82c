/** validate: every rule it enforces, shown catching its violation, and silence for a correct exchange. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LintError, validate } from '../../src/middleware/validate.js';
import { RequestInput, type BodySource } from '../../src/input.js';
import type { App, Body, Bytes, Environ, StartResponse } from '../../src/types.js';

const b = (s: string) => Buffer.from(s);

function source(chunks: string[]): BodySource {
  const queue = chunks.map(b);
  return { next: () => Promise.resolve(queue.shift() ?? null) };
}

/** A valid environ, as a server would build it; `over` replaces or (with undefined) removes keys. */
function environ(over: Record<string, unknown> = {}, body: string[] = []): Environ {
  const length = body.join('').length;
  const env: Record<string, unknown> = {
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '',
    PATH_INFO: '/',
    QUERY_STRING: '',
    SERVER_NAME: 'localhost',
    SERVER_PORT: '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_URI: '/',
    'wsgi.version': [1, 0],
    'wsgi.url_scheme': 'http',
    'wsgi.input': new RequestInput(source(body), { maxBodySize: 1e6, length }),
    'wsgi.errors': { write() {}, writelines() {}, flush() {} },
    'wsgi.multithread': false,
    'wsgi.multiprocess': false,
    'wsgi.run_once': false,
    'nsgi.signal': new AbortController().signal,
  };
  if (length > 0) env.CONTENT_LENGTH = String(length);
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env as Environ;
}

const okStart: StartResponse = () => async () => {};

/** Runs `app` under validate as a well-behaved server would; returns the rules reported. */
async function run(
  app: App,
  env: Environ = environ(),
  server: { start?: StartResponse; iterate?: (body: Body) => Promise<void> } = {},
): Promise<string[]> {
  const rules: string[] = [];
  const lint = validate(app, { onViolation: (e) => rules.push(`${e.side}:${e.rule}`) });
  try {
    const body = await lint(env, server.start ?? okStart);
    if (server.iterate) await server.iterate(body);
    else {
      if (Symbol.asyncIterator in body) for await (const _ of body as AsyncIterable<Bytes>);
      else for (const _ of body as Iterable<Bytes>);
      await body.close?.();
    }
  } catch {
    // What a broken app or body throws next is not the point: the violations reported are.
  }
  await new Promise((r) => setImmediate(r));
  return rules;
}

const hello: App = (_e, sr) => {
  sr('200 OK', [
    ['Content-Type', 'text/plain'],
    ['Content-Length', '5'],
  ]);
  return [b('hello')];
};

function* gen(chunks: string[]): Generator<Bytes> {
  for (const c of chunks) yield b(c);
}

const streaming =
  (chunks: string[], headers: Array<[string, string]> = [['Content-Type', 'text/plain']]): App =>
  (_e, sr) => {
    sr('200 OK', headers);
    return gen(chunks);
  };

describe('validate: a correct exchange', () => {
  it('reports nothing for array, generator and async bodies, and keeps an array body as it is', async () => {
    assert.deepEqual(await run(hello), []);
    assert.deepEqual(await run(streaming(['a', 'b'])), []);
    const asyncApp: App = async (environ, sr) => {
      const body = await environ['wsgi.input'].read();
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield body;
      })();
    };
    assert.deepEqual(await run(asyncApp, environ({ REQUEST_METHOD: 'POST' }, ['abc'])), []);
    const chunks = [b('x')];
    const lint = validate((_e, sr) => {
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return chunks;
    });
    assert.equal(await lint(environ(), okStart), chunks);
  });

  it('throws a LintError naming the rule and the fix when no hook is given', async () => {
    const lint = validate((_e, sr) => {
      sr('200 OK', []);
      return [];
    });
    assert.throws(
      () => lint(environ(), okStart),
      (e: unknown) =>
        e instanceof LintError && e.rule === 'headers.content-type' && /needs a Content-Type/.test(e.message),
    );
  });
});

describe('validate: what the server hands the app', () => {
  const environRules: Array<[string, Record<string, unknown>, string]> = [
    ['environ.required', { QUERY_STRING: undefined }, 'QUERY_STRING missing'],
    ['environ.content-headers', { HTTP_CONTENT_TYPE: 'text/plain' }, 'HTTP_CONTENT_TYPE set'],
    ['environ.cgi-string', { REMOTE_PORT: 8080 }, 'a number as a CGI value'],
    ['environ.native-string', { HTTP_X: '\u20ac' }, 'a character above U+00FF'],
    ['environ.http-key', { 'HTTP_x-y': 'v' }, 'a malformed HTTP_ key'],
    ['environ.wsgi-version', { 'wsgi.version': [1, 1] }, 'wsgi.version [1, 1]'],
    ['environ.url-scheme', { 'wsgi.url_scheme': 'ftp' }, 'an ftp scheme'],
    ['environ.flags', { 'wsgi.run_once': 'no' }, 'a non-boolean flag'],
    ['environ.input', { 'wsgi.input': { read() {} } }, 'an input without readline'],
    ['environ.errors', { 'wsgi.errors': { write() {} } }, 'an error stream without flush'],
    ['environ.signal', { 'nsgi.signal': {} }, 'a signal that is not an AbortSignal'],
    ['environ.method', { REQUEST_METHOD: 'GE T' }, 'a method that is not a token'],
    ['environ.script-name', { SCRIPT_NAME: '/' }, "SCRIPT_NAME '/'"],
    ['environ.path-info', { PATH_INFO: 'x' }, 'a PATH_INFO without /'],
    ['environ.path-empty', { PATH_INFO: '' }, 'SCRIPT_NAME and PATH_INFO both empty'],
    ['environ.content-length', { CONTENT_LENGTH: '+5' }, 'CONTENT_LENGTH +5'],
    ['environ.server-port', { SERVER_PORT: 'http' }, 'a SERVER_PORT that is not digits'],
    ['environ.protocol', { SERVER_PROTOCOL: 'HTTP/one' }, 'a malformed SERVER_PROTOCOL'],
  ];
  for (const [rule, over, what] of environRules) {
    it(`${rule}: ${what}`, async () => {
      assert.ok((await run(hello, environ(over))).includes(`server:${rule}`));
    });
  }

  it('environ.plain-object: an environ that is a class instance', async () => {
    const env = Object.assign(Object.create({ inherited: true }) as object, environ());
    assert.ok((await run(hello, env)).includes('server:environ.plain-object'));
  });

  it('app.arguments and app.start-response: a server calling the app wrongly', () => {
    const rules: string[] = [];
    const lint = validate(hello, { onViolation: (e) => rules.push(e.rule) }) as (...a: unknown[]) => unknown;
    lint(environ(), okStart, 'extra');
    assert.ok(rules.includes('app.arguments'));
    rules.length = 0;
    try {
      lint(environ(), 'not a function');
    } catch {
      // the app then fails calling it; the violation is what matters
    }
    assert.ok(rules.includes('app.start-response'));
  });

  it('start-response.write: startResponse that returns no write()', async () => {
    const start = (() => undefined) as unknown as StartResponse;
    assert.ok((await run(hello, environ(), { start })).includes('server:start-response.write'));
  });

  const inputRules: Array<
    [
      string,
      Partial<Record<'read' | 'readline' | 'readlines', (...a: unknown[]) => Promise<unknown>>>,
      (e: Environ) => Promise<unknown>,
    ]
  > = [
    ['input.bytes', { read: async () => 'text' }, (e) => e['wsgi.input'].read()],
    ['input.size', { read: async () => b('abcdef') }, (e) => e['wsgi.input'].read(2)],
    ['input.readline', { readline: async () => b('a\nb\n') }, (e) => e['wsgi.input'].readline()],
    ['input.readlines', { readlines: async () => 'a\n' }, (e) => e['wsgi.input'].readlines()],
  ];
  for (const [rule, impl, use] of inputRules) {
    it(`${rule}: a wsgi.input that misbehaves`, async () => {
      const input = {
        read: async () => b(''),
        readline: async () => b(''),
        readlines: async () => [],
        async *[Symbol.asyncIterator]() {},
        ...impl,
      };
      const app: App = async (e, sr) => {
        await use(e);
        sr('200 OK', [['Content-Type', 'text/plain']]);
        return [];
      };
      assert.ok((await run(app, environ({ 'wsgi.input': input }))).includes(`server:${rule}`));
    });
  }

  it('input.after-eof and input.over-length: data after the end, more than CONTENT_LENGTH', async () => {
    const replies = [b(''), b('late')];
    const input = {
      read: async () => replies.shift() ?? b(''),
      readline: async () => b(''),
      readlines: async () => [],
      async *[Symbol.asyncIterator]() {},
    };
    const app: App = async (e, sr) => {
      await e['wsgi.input'].read();
      await e['wsgi.input'].read();
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return [];
    };
    const rules = await run(app, environ({ 'wsgi.input': input, CONTENT_LENGTH: '2' }));
    assert.ok(rules.includes('server:input.after-eof'));
    assert.ok(rules.includes('server:input.over-length'));
  });

  it('body.iterated-twice, body.after-close and body.close-twice: a server that misuses the body', async () => {
    const rules = await run(streaming(['a']), environ(), {
      iterate: async (body) => {
        for (const _ of body as Iterable<Bytes>);
        await body.close?.();
        await body.close?.();
        for (const _ of body as Iterable<Bytes>);
      },
    });
    assert.ok(rules.includes('server:body.close-twice'));
    assert.ok(rules.includes('server:body.iterated-twice'));
    assert.ok(rules.includes('server:body.after-close'));
  });

  it('body.close-missing: reported when iteration ends, not when memory is collected', async () => {
    const rules = await run(streaming(['a']), environ(), {
      iterate: async (body) => {
        for (const _ of body as Iterable<Bytes>);
      },
    });
    assert.ok(rules.includes('server:body.close-missing'));
  });
});

describe('validate: what the app does', () => {
  const startRules: Array<[string, App]> = [
    ['start-response.arguments', (_e, sr) => ((sr as unknown as (s: string) => void)('200 OK'), [])],
    [
      'start-response.twice',
      (_e, sr) => (sr('200 OK', [['Content-Type', 'text/plain']]), sr('200 OK', [['Content-Type', 'text/plain']]), []),
    ],
    ['headers.array', (_e, sr) => (sr('200 OK', {} as never), [])],
    ['headers.pair', (_e, sr) => (sr('200 OK', [['Content-Type', 'text/plain', 'x'] as never]), [])],
    ['start-response.invalid-status', (_e, sr) => (sr('200OK', [['Content-Type', 'text/plain']]), [])],
    ['start-response.informational-status', (_e, sr) => (sr('100 Continue', []), [])],
    [
      'start-response.hop-by-hop-header',
      (_e, sr) => (
        sr('200 OK', [
          ['Content-Type', 'text/plain'],
          ['Connection', 'close'],
        ]),
        []
      ),
    ],
    [
      'start-response.invalid-header-value',
      (_e, sr) => (
        sr('200 OK', [
          ['Content-Type', 'text/plain'],
          ['X-A', 'a\r\nSet-Cookie: x'],
        ]),
        []
      ),
    ],
    [
      'start-response.invalid-header-name',
      (_e, sr) => (
        sr('200 OK', [
          ['Content-Type', 'text/plain'],
          ['X A', '1'],
        ]),
        []
      ),
    ],
    ['headers.content-type', (_e, sr) => (sr('200 OK', []), [])],
    ['headers.content-type', (_e, sr) => (sr('204 No Content', [['Content-Type', 'text/plain']]), [])],
    ['headers.content-length', (_e, sr) => (sr('304 Not Modified', [['Content-Length', '0']]), [])],
    ['app.return', () => null as never],
    ['app.return', () => 'text' as never],
    ['app.return', () => ({ notIterable: true }) as never],
    ['body.bytes', (_e, sr) => (sr('200 OK', [['Content-Type', 'text/plain']]), ['text' as never])],
    ['body.before-start', () => gen(['x'])],
    ['body.no-body-status', (_e, sr) => (sr('204 No Content', []), [b('x')])],
    [
      'body.content-length',
      (_e, sr) => (
        sr('200 OK', [
          ['Content-Type', 'text/plain'],
          ['Content-Length', '9'],
        ]),
        gen(['short'])
      ),
    ],
  ];
  for (const [rule, app] of startRules) {
    it(`${rule}`, async () => {
      const rules = await run(app);
      assert.ok(rules.includes(`app:${rule}`), `${rule} not in ${JSON.stringify(rules)}`);
    });
  }

  it('body.head: a body for a HEAD request', async () => {
    assert.ok((await run(hello, environ({ REQUEST_METHOD: 'HEAD' }))).includes('app:body.head'));
  });

  it('write.bytes: write() given a string', async () => {
    const app: App = async (_e, sr) => {
      const write = sr('200 OK', [['Content-Type', 'text/plain']]);
      await write('text' as never);
      return [];
    };
    assert.ok((await run(app)).includes('app:write.bytes'));
  });

  it('input.size and input.close: the app misusing wsgi.input', async () => {
    const app: App = async (e, sr) => {
      await e['wsgi.input'].read('5' as never).catch(() => undefined);
      (e['wsgi.input'] as unknown as { close(): void }).close();
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return [];
    };
    const rules = await run(app, environ({}, ['abcde']));
    assert.ok(rules.includes('app:input.size'));
    assert.ok(rules.includes('app:input.close'));
  });

  it('errors.write and errors.close: the app misusing wsgi.errors', async () => {
    const app: App = (e, sr) => {
      e['wsgi.errors'].write(42 as never);
      (e['wsgi.errors'] as unknown as { close(): void }).close();
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return [];
    };
    const rules = await run(app);
    assert.ok(rules.includes('app:errors.write'));
    assert.ok(rules.includes('app:errors.close'));
  });

  it('body.block-boundary: a middleware that buffers the app body between two validate layers', async () => {
    const buffering =
      (inner: App): App =>
      async (e, sr) => {
        const body = await inner(e, sr);
        const all: Bytes[] = [];
        for await (const c of body as AsyncIterable<Bytes>) all.push(c);
        await body.close?.();
        return gen([Buffer.concat(all).toString()]);
      };
    const passing =
      (inner: App): App =>
      async (e, sr) => {
        const body = await inner(e, sr);
        return (async function* () {
          try {
            for await (const c of body as AsyncIterable<Bytes>) yield c;
          } finally {
            await body.close?.();
          }
        })();
      };
    const app: App = async (_e, sr) => {
      sr('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield b('a');
        yield b('b');
      })();
    };
    const rules: string[] = [];
    const hook = { onViolation: (e: LintError) => rules.push(e.rule) };
    const drive = async (outer: App) => {
      const body = await outer(environ(), okStart);
      for await (const _ of body as AsyncIterable<Bytes>);
      await body.close?.();
    };
    await drive(validate(passing(validate(app, hook)), hook));
    assert.equal(rules.length, 0, `a middleware that passes each chunk on is fine: ${rules.join(', ')}`);
    await drive(validate(buffering(validate(app, hook)), hook));
    assert.ok(rules.includes('body.block-boundary'));
  });
});
