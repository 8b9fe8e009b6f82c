/**
 * `validate`: the lint. Wrapped around an app it checks, as they happen, both sides of the interface:
 * what the server (or the middleware calling it) hands the app — environ, wsgi.input, wsgi.errors,
 * the startResponse it gets, how the body is iterated and closed — and what the app does with them.
 * The checks are those of Python's `wsgiref.validate` and the stronger ones of `Rack::Lint`: bytes
 * are counted while the server iterates (never in a pre-pass that would consume a one-shot body),
 * and a close() that never comes is reported when the response ends, not when memory is collected.
 */

import { toApp } from '../app-forms.js';
import { describeValue } from '../describe.js';
import { InterfaceError } from '../errors.js';
import { parseResponseHead, TOKEN_RE } from '../response-head.js';
import type { App, AppLike, Body, Bytes, Environ, ErrorStream, InputStream, StartResponse, WriteFn } from '../types.js';
import { thenOrNow } from '../thenable.js';
import { watchOffer, type AcceptOptions, type WebSocketOffer } from '../websocket.js';

/** A broken rule of the interface, named (`rule`) and blamed on one side. */
export class LintError extends Error {
  readonly code = 'ERR_NSGI_LINT';
  /** Which rule, e.g. `environ.required`, `body.close-missing`. */
  readonly rule: string;
  /** `server`: the server (or the middleware calling the app) broke it; `app`: the app (or middleware) did. */
  readonly side: 'server' | 'app';
  constructor(side: 'server' | 'app', rule: string, message: string) {
    super(`nsgi lint [${rule}] ${side === 'server' ? 'server' : 'app'}: ${message}`);
    this.name = 'LintError';
    this.rule = rule;
    this.side = side;
  }
}

export interface ValidateOptions {
  /**
   * Receives every violation. Default: violations found during a call are thrown from it (so the
   * app's call, start_response or the body's iteration fails), and those found afterwards (a
   * close() never made) are written to `wsgi.errors`. With this hook nothing is thrown: collect
   * them, e.g. to fail a test at its end.
   */
  onViolation?: ((error: LintError) => void) | undefined;
}

const REQUIRED = [
  'REQUEST_METHOD',
  'SCRIPT_NAME',
  'PATH_INFO',
  'QUERY_STRING',
  'SERVER_NAME',
  'SERVER_PORT',
  'SERVER_PROTOCOL',
  'wsgi.version',
  'wsgi.url_scheme',
  'wsgi.input',
  'wsgi.errors',
  'wsgi.multithread',
  'wsgi.multiprocess',
  'wsgi.run_once',
  'nsgi.signal',
] as const;

// eslint-disable-next-line no-control-regex -- a native string is any run of U+0000..U+00FF
const NATIVE = /^[\x00-\xff]*$/;
const DIGITS = /^[0-9]+$/;
const HTTP_KEY = /^HTTP_[A-Z0-9_]+$/;
const NO_BODY_STATUS = (code: number) => code < 200 || code === 204 || code === 304;
const LINE_FEED = 0x0a;

/** One layer of validate in a request, for the block-boundary rule between nested layers. */
interface Layer {
  /** Chunks this layer's body has yielded to whoever iterates it. */
  yields: number;
}

/** The per-request state of one validate layer. */
class RequestLint {
  readonly environ: Environ;
  readonly #options: ValidateOptions;
  readonly #layers: Layer[];
  readonly #index: number;
  readonly layer: Layer = { yields: 0 };
  startCalled = false;
  /** The app accepted a WebSocket (SPEC §16). */
  accepted = false;
  status = 0;
  contentLength: number | undefined = undefined;
  hasBodyRules = true;
  bytes = 0;
  readonly head: boolean;

  constructor(environ: Environ, options: ValidateOptions) {
    this.environ = environ;
    this.#options = options;
    let layers = environ['nsgi.lint'] as Layer[] | undefined;
    if (!Array.isArray(layers)) environ['nsgi.lint'] = layers = [];
    this.#layers = layers;
    this.#index = layers.push(this.layer) - 1;
    this.head = environ.REQUEST_METHOD === 'HEAD';
  }

  /** Reports a violation found during a call: thrown unless a hook takes it. */
  fail(side: 'server' | 'app', rule: string, message: string): void {
    const err = new LintError(side, rule, message);
    if (this.#options.onViolation === undefined) throw err;
    this.#options.onViolation(err);
  }

  /** Reports a violation found after the fact, where nothing can be thrown to. */
  later(side: 'server' | 'app', rule: string, message: string): void {
    const err = new LintError(side, rule, message);
    if (this.#options.onViolation !== undefined) this.#options.onViolation(err);
    else this.environ['wsgi.errors']?.write?.(`${err.message}\n`);
  }

  /** The block-boundary rule: before this layer's body is pulled again, the layer outside must have passed the last chunk on. */
  checkBoundary(): void {
    if (this.#index === 0) return;
    const outer = this.#layers[this.#index - 1];
    if (outer === undefined || this.layer.yields === 0) return;
    if (outer.yields < this.layer.yields) {
      this.fail(
        'app',
        'body.block-boundary',
        `the middleware around this app pulled chunk ${this.layer.yields + 1} of the app's body before yielding anything ` +
          `for chunk ${this.layer.yields}; yield once per chunk pulled (an empty chunk when holding data back)`,
      );
    }
  }
}

/** The environ's shape, its wsgi.* keys and its CGI values (the environ.* rules). */
function checkEnviron(lint: RequestLint, environ: Environ): void {
  const proto = Object.getPrototypeOf(environ) as unknown;
  if (typeof environ !== 'object' || environ === null || (proto !== Object.prototype && proto !== null)) {
    lint.fail('server', 'environ.plain-object', `environ must be a plain object, got ${describeValue(environ)}`);
    return;
  }
  checkKeys(lint, environ);
  checkWsgiKeys(lint, environ);
  checkCgiValues(lint, environ);
}

/** Required keys present, every CGI value a native string, HTTP_* names well formed. */
function checkKeys(lint: RequestLint, environ: Environ): void {
  for (const key of REQUIRED) {
    if (!(key in environ)) lint.fail('server', 'environ.required', `environ has no ${key}`);
  }
  for (const key of ['HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH']) {
    if (key in environ) lint.fail('server', 'environ.content-headers', `${key} must not be set: use ${key.slice(5)}`);
  }
  for (const key of Object.keys(environ)) {
    if (key.includes('.')) continue;
    const value = environ[key];
    if (typeof value !== 'string')
      lint.fail('server', 'environ.cgi-string', `${key} must be a string, got ${describeValue(value)}`);
    else if (!NATIVE.test(value))
      lint.fail(
        'server',
        'environ.native-string',
        `${key} has characters above U+00FF: values are latin-1 native strings`,
      );
    if (key.startsWith('HTTP_') && !HTTP_KEY.test(key))
      lint.fail('server', 'environ.http-key', `${key} is not HTTP_ + upper-case letters, digits and _`);
  }
}

/** wsgi.version, wsgi.url_scheme, the flags, wsgi.input, wsgi.errors and nsgi.signal. */
function checkWsgiKeys(lint: RequestLint, environ: Environ): void {
  const version = environ['wsgi.version'] as unknown;
  if (!Array.isArray(version) || version.length !== 2 || version[0] !== 1 || version[1] !== 0) {
    lint.fail('server', 'environ.wsgi-version', `wsgi.version must be [1, 0], got ${JSON.stringify(version)}`);
  }
  const scheme = environ['wsgi.url_scheme'] as unknown;
  if (scheme !== 'http' && scheme !== 'https')
    lint.fail(
      'server',
      'environ.url-scheme',
      `wsgi.url_scheme must be 'http' or 'https', got ${JSON.stringify(scheme)}`,
    );
  for (const key of ['wsgi.multithread', 'wsgi.multiprocess', 'wsgi.run_once'] as const) {
    if (typeof environ[key] !== 'boolean') lint.fail('server', 'environ.flags', `${key} must be a boolean`);
  }
  const input = environ['wsgi.input'] as Partial<InputStream> | undefined;
  if (
    input !== undefined &&
    (typeof input?.read !== 'function' ||
      typeof input.readline !== 'function' ||
      typeof input.readlines !== 'function' ||
      typeof input[Symbol.asyncIterator] !== 'function')
  ) {
    lint.fail('server', 'environ.input', 'wsgi.input must have read, readline, readlines and async iteration');
  }
  const errors = environ['wsgi.errors'] as Partial<ErrorStream> | undefined;
  if (
    errors !== undefined &&
    (typeof errors?.write !== 'function' ||
      typeof errors.writelines !== 'function' ||
      typeof errors.flush !== 'function')
  ) {
    lint.fail('server', 'environ.errors', 'wsgi.errors must have write, writelines and flush');
  }
  const signal = environ['nsgi.signal'] as unknown;
  if ('nsgi.signal' in environ && !(signal instanceof AbortSignal))
    lint.fail('server', 'environ.signal', `nsgi.signal must be an AbortSignal, got ${describeValue(signal)}`);
}

/** REQUEST_METHOD, SCRIPT_NAME, PATH_INFO, CONTENT_LENGTH, SERVER_PORT and SERVER_PROTOCOL as CGI defines them. */
function checkCgiValues(lint: RequestLint, environ: Environ): void {
  const method = environ.REQUEST_METHOD;
  if (typeof method === 'string' && !TOKEN_RE.test(method))
    lint.fail('server', 'environ.method', `REQUEST_METHOD ${JSON.stringify(method)} is not a token`);
  const script = environ.SCRIPT_NAME;
  if (typeof script === 'string' && script !== '' && (!script.startsWith('/') || script === '/')) {
    lint.fail(
      'server',
      'environ.script-name',
      `SCRIPT_NAME must be '' or start with '/' (and not be '/'), got ${JSON.stringify(script)}`,
    );
  }
  const path = environ.PATH_INFO;
  if (typeof path === 'string' && path !== '' && !path.startsWith('/') && !(path === '*' && method === 'OPTIONS')) {
    lint.fail(
      'server',
      'environ.path-info',
      `PATH_INFO must be '' or start with '/' ('*' only for OPTIONS), got ${JSON.stringify(path)}`,
    );
  }
  if (script === '' && path === '')
    lint.fail('server', 'environ.path-empty', 'SCRIPT_NAME and PATH_INFO are both empty: the root is PATH_INFO "/"');
  if (environ.CONTENT_LENGTH !== undefined && !DIGITS.test(String(environ.CONTENT_LENGTH))) {
    lint.fail(
      'server',
      'environ.content-length',
      `CONTENT_LENGTH must be digits only, got ${JSON.stringify(environ.CONTENT_LENGTH)}`,
    );
  }
  if (typeof environ.SERVER_PORT === 'string' && !DIGITS.test(environ.SERVER_PORT))
    lint.fail(
      'server',
      'environ.server-port',
      `SERVER_PORT must be digits, got ${JSON.stringify(environ.SERVER_PORT)}`,
    );
  if (typeof environ.SERVER_PROTOCOL === 'string' && !/^HTTP\/\d(\.\d)?$/.test(environ.SERVER_PROTOCOL)) {
    lint.fail(
      'server',
      'environ.protocol',
      `SERVER_PROTOCOL must look like HTTP/1.1, got ${JSON.stringify(environ.SERVER_PROTOCOL)}`,
    );
  }
}

/** wsgi.input as the app sees it: its results are checked (server) and its use (app). */
function lintInput(lint: RequestLint, input: InputStream): InputStream & { close(): void } {
  const declared = lint.environ.CONTENT_LENGTH === undefined ? Infinity : Number(lint.environ.CONTENT_LENGTH);
  let total = 0;
  let eof = false;
  const sizeArg = (method: string, size: unknown) => {
    if (size !== undefined && size !== null && !(typeof size === 'number' && Number.isInteger(size))) {
      lint.fail(
        'app',
        'input.size',
        `wsgi.input.${method}(size): size must be an integer, null or omitted, got ${describeValue(size)}`,
      );
    }
  };
  const got = (method: string, chunk: unknown, size: unknown): Bytes => {
    if (!(chunk instanceof Uint8Array)) {
      lint.fail('server', 'input.bytes', `wsgi.input.${method}() must give a Uint8Array, gave ${describeValue(chunk)}`);
      return new Uint8Array(0);
    }
    if (typeof size === 'number' && size >= 0 && chunk.length > size)
      lint.fail('server', 'input.size', `wsgi.input.${method}(${size}) gave ${chunk.length} bytes`);
    if (eof && chunk.length > 0)
      lint.fail(
        'server',
        'input.after-eof',
        `wsgi.input.${method}() gave data after it had signalled the end of the body`,
      );
    if (chunk.length === 0 && (size === undefined || size === null || (typeof size === 'number' && size !== 0)))
      eof = true;
    total += chunk.length;
    if (total > declared)
      lint.fail('server', 'input.over-length', `wsgi.input gave ${total} bytes for a CONTENT_LENGTH of ${declared}`);
    return chunk;
  };
  const checkLine = (line: Bytes) => {
    const nl = line.indexOf(LINE_FEED);
    if (nl !== -1 && nl !== line.length - 1)
      lint.fail('server', 'input.readline', 'wsgi.input.readline() gave more than one line');
  };
  const wrapped = {
    async read(size?: number | null) {
      sizeArg('read', size);
      return got('read', await input.read(size), size);
    },
    async readline(size?: number | null) {
      sizeArg('readline', size);
      const line = got('readline', await input.readline(size), size);
      checkLine(line);
      return line;
    },
    async readlines(hint?: number | null) {
      sizeArg('readlines', hint);
      const lines = (await input.readlines(hint)) as unknown;
      if (!Array.isArray(lines)) {
        lint.fail(
          'server',
          'input.readlines',
          `wsgi.input.readlines() must give an array, gave ${describeValue(lines)}`,
        );
        return [];
      }
      return lines.map((l) => {
        const line = got('readlines', l, undefined);
        checkLine(line);
        return line;
      });
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const line = await wrapped.readline();
        if (line.length === 0) return;
        yield line;
      }
    },
    close() {
      lint.fail('app', 'input.close', 'wsgi.input.close() must not be called: the server owns the request body');
    },
  };
  return wrapped;
}

function lintErrors(lint: RequestLint, errors: ErrorStream): ErrorStream & { close(): void } {
  return {
    write(s: string) {
      if (typeof s !== 'string')
        lint.fail('app', 'errors.write', `wsgi.errors.write() takes a string, got ${describeValue(s)}`);
      errors.write(s);
    },
    writelines(lines: Iterable<string>) {
      for (const s of lines) this.write(s);
    },
    flush() {
      errors.flush();
    },
    close() {
      lint.fail('app', 'errors.close', 'wsgi.errors.close() must not be called: the server owns it');
    },
  };
}

function lintStartResponse(lint: RequestLint, startResponse: StartResponse): StartResponse {
  return function (this: unknown, ...args: unknown[]): WriteFn {
    const [status, headers, excInfo] = args as [string, never, unknown];
    if (args.length < 2 || args.length > 3)
      lint.fail('app', 'start-response.arguments', `startResponse takes 2 or 3 arguments, got ${args.length}`);
    const hasExc = excInfo !== undefined && excInfo !== null;
    if (lint.accepted) {
      lint.fail(
        'app',
        'websocket.start-after-accept',
        'startResponse was called after nsgi.websocket.accept(); the 101 is sent: return [] and use the socket',
      );
    }
    if (lint.startCalled && !hasExc) {
      lint.fail(
        'app',
        'start-response.twice',
        'startResponse was called again without excInfo; pass the caught error as the third argument',
      );
    }
    if (!Array.isArray(headers))
      lint.fail(
        'app',
        'headers.array',
        `headers must be an Array of [name, value] pairs, got ${describeValue(headers)}`,
      );
    else {
      for (const h of headers as unknown[]) {
        if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string') {
          lint.fail(
            'app',
            'headers.pair',
            `each header must be a [name, value] pair of strings, got ${JSON.stringify(h)}`,
          );
        }
      }
    }
    let head;
    try {
      head = parseResponseHead(status, headers);
    } catch (err) {
      if (!(err instanceof InterfaceError)) throw err;
      // The core's own rules for a status and headers, under the name of the one broken.
      lint.fail(
        'app',
        `start-response.${err.code.replace('ERR_NSGI_', '').toLowerCase().replace(/_/g, '-')}`,
        err.message,
      );
    }
    if (head !== undefined) {
      const names = head.headers.map(([n]) => n.toLowerCase());
      const noBody = NO_BODY_STATUS(head.code);
      if (noBody && names.includes('content-type'))
        lint.fail('app', 'headers.content-type', `a ${head.code} response must not have Content-Type`);
      if (noBody && names.includes('content-length'))
        lint.fail('app', 'headers.content-length', `a ${head.code} response must not have Content-Length`);
      if (!noBody && !names.includes('content-type'))
        lint.fail('app', 'headers.content-type', `a ${head.code} response needs a Content-Type`);
      lint.status = head.code;
      lint.contentLength = head.contentLength;
      lint.hasBodyRules = !noBody;
    }
    lint.startCalled = true;
    const write = startResponse(status, headers, excInfo);
    if (typeof write !== 'function') {
      lint.fail(
        'server',
        'start-response.write',
        `startResponse must return write(), returned ${describeValue(write)}`,
      );
      return write;
    }
    return (data: Bytes) => {
      if (!(data instanceof Uint8Array))
        lint.fail('app', 'write.bytes', `write() takes a Uint8Array, got ${describeValue(data)}`);
      else lint.bytes += data.length;
      return write(data);
    };
  };
}

/** Checks a chunk the app yielded; returns it. */
function yielded(lint: RequestLint, chunk: unknown, index: number): unknown {
  if (!(chunk instanceof Uint8Array)) {
    lint.fail(
      'app',
      'body.bytes',
      `the body yielded ${describeValue(chunk)} as chunk ${index}; yield Uint8Array chunks`,
    );
    return chunk;
  }
  if (chunk.length > 0) {
    if (lint.accepted)
      lint.fail(
        'app',
        'websocket.body-after-accept',
        'the body yielded data after nsgi.websocket.accept(); return [] and send over the socket',
      );
    else if (!lint.startCalled)
      lint.fail('app', 'body.before-start', 'the body yielded data before startResponse was called');
    if (lint.head)
      lint.fail('app', 'body.head', 'the body yielded data for a HEAD request; a HEAD response has no body');
    else if (!lint.hasBodyRules && lint.startCalled)
      lint.fail('app', 'body.no-body-status', `the body yielded data for a ${lint.status} response`);
  }
  lint.bytes += chunk.length;
  return chunk;
}

function checkLength(lint: RequestLint): void {
  const cl = lint.contentLength;
  if (cl !== undefined && !lint.head && lint.hasBodyRules && lint.bytes !== cl) {
    lint.fail('app', 'body.content-length', `Content-Length was ${cl} but the body gave ${lint.bytes} bytes`);
  }
}

/** The body as the server sees it: iterated at most once, never after close(), close() exactly once. */
function lintBody(lint: RequestLint, body: Body): Body {
  if (Array.isArray(body)) {
    // All chunks are here: checked now, and the array itself goes on so the server still sees one.
    (body as unknown[]).forEach((chunk, i) => yielded(lint, chunk, i));
    checkLength(lint);
    return body as Body;
  }
  const isAsync = typeof (body as AsyncIterable<Bytes>)[Symbol.asyncIterator] === 'function';
  let iterated = false;
  let closed = false;
  let ended = false;
  let index = 0;
  const afterEnd = () => {
    if (ended) return;
    ended = true;
    // The server's close() is due once iteration is over: looked for after what runs next.
    setImmediate(() => {
      if (!closed)
        lint.later('server', 'body.close-missing', 'the server finished with the body but did not call close()');
    });
  };
  const start = () => {
    if (iterated)
      lint.fail('server', 'body.iterated-twice', 'the body was iterated a second time; a body is consumed once');
    if (closed) lint.fail('server', 'body.after-close', 'the body was iterated after close()');
    iterated = true;
  };
  const step = (r: IteratorResult<Bytes>): IteratorResult<Bytes> => {
    if (r.done) {
      checkLength(lint);
      afterEnd();
      return r;
    }
    yielded(lint, r.value, index++);
    lint.layer.yields++;
    return r;
  };
  const pull = () => {
    if (closed) lint.fail('server', 'body.after-close', 'the body was read after close()');
    lint.checkBoundary();
  };
  const wrapped: Record<string | symbol, unknown> = {
    close() {
      if (closed) {
        lint.fail('server', 'body.close-twice', 'close() was called twice; call it exactly once');
        return undefined;
      }
      closed = true;
      afterEnd();
      return typeof body.close === 'function' ? body.close() : undefined;
    },
  };
  if (isAsync) {
    wrapped[Symbol.asyncIterator] = () => {
      start();
      const it = (body as AsyncIterable<Bytes>)[Symbol.asyncIterator]();
      return {
        async next() {
          pull();
          return step(await it.next());
        },
        async return(value?: unknown) {
          afterEnd();
          return typeof it.return === 'function' ? it.return(value) : { done: true, value: undefined };
        },
      };
    };
  } else {
    wrapped[Symbol.iterator] = () => {
      start();
      const it = (body as Iterable<Bytes>)[Symbol.iterator]();
      return {
        next() {
          pull();
          return step(it.next());
        },
        return(value?: unknown) {
          afterEnd();
          return typeof it.return === 'function' ? it.return(value) : { done: true, value: undefined };
        },
      };
    };
  }
  return wrapped as unknown as Body;
}

/** The websocket.* rules: the offer's shape (server), and how the app accepts it (app). */
function lintOffer(lint: RequestLint, environ: Environ): void {
  if (!('nsgi.websocket' in environ)) return;
  const offer = environ['nsgi.websocket'] as Partial<WebSocketOffer> | undefined;
  if (typeof offer?.accept !== 'function' || !Array.isArray(offer.protocols) || typeof offer.extensions !== 'string') {
    lint.fail(
      'server',
      'environ.websocket',
      'nsgi.websocket must be an offer with accept(), protocols and extensions, or absent',
    );
    return;
  }
  let accepts = 0;
  watchOffer(environ, {
    accepting(options) {
      if (++accepts > 1)
        lint.fail('app', 'websocket.accept-twice', 'nsgi.websocket.accept() was called twice; accept a handshake once');
      if (lint.startCalled)
        lint.fail(
          'app',
          'websocket.accept-after-start',
          'nsgi.websocket.accept() after startResponse: answer either in HTTP or by accepting the socket',
        );
      const protocol = (options as AcceptOptions | undefined)?.protocol;
      if (protocol !== undefined && !offer.protocols!.includes(protocol))
        lint.fail(
          'app',
          'websocket.protocol',
          `accept() chose the subprotocol ${JSON.stringify(protocol)}, which the client did not offer (offer.protocols)`,
        );
    },
    accepted() {
      lint.accepted = true;
    },
  });
}

function checkResult(lint: RequestLint, result: unknown): Body {
  if (result === null || result === undefined || result === false) {
    lint.fail('app', 'app.return', `the app returned ${String(result)}; return an iterable body, [] when it is empty`);
  } else if (typeof result === 'string' || result instanceof Uint8Array) {
    lint.fail(
      'app',
      'app.return',
      `the app returned ${describeValue(result)}; wrap it in an array: [Buffer.from(...)]`,
    );
  } else if (
    typeof (result as Iterable<Bytes>)[Symbol.iterator] !== 'function' &&
    typeof (result as AsyncIterable<Bytes>)[Symbol.asyncIterator] !== 'function'
  ) {
    lint.fail('app', 'app.return', `the app returned ${describeValue(result)}, which is not iterable`);
  } else {
    return lintBody(lint, result as Body);
  }
  return result as Body;
}

/**
 * Wraps `app` so that every call is checked. Put it around an app to check the app (and, since it
 * sees what the server passes, the server); put one inside and one outside a middleware to check
 * the middleware, including its block boundaries.
 */
export function validate(app: AppLike, options: ValidateOptions = {}): App {
  const inner = toApp(app);
  return function validated(this: unknown, ...args: unknown[]) {
    const [environ, startResponse] = args as [Environ, StartResponse];
    const lint = new RequestLint(environ, options);
    if (args.length !== 2)
      lint.fail(
        'server',
        'app.arguments',
        `the app must be called with (environ, startResponse), got ${args.length} arguments`,
      );
    if (typeof startResponse !== 'function')
      lint.fail(
        'server',
        'app.start-response',
        `startResponse must be a function, got ${describeValue(startResponse)}`,
      );
    checkEnviron(lint, environ);
    if (environ['wsgi.input'] !== undefined) environ['wsgi.input'] = lintInput(lint, environ['wsgi.input']);
    if (environ['wsgi.errors'] !== undefined) environ['wsgi.errors'] = lintErrors(lint, environ['wsgi.errors']);
    lintOffer(lint, environ);
    return thenOrNow(inner(environ, lintStartResponse(lint, startResponse)), (r) => checkResult(lint, r));
  };
}
