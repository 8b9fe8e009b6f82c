/**
 * The Request and Response that fromFetchHandler trades in, built lazily. A Fetch handler usually
 * reads a request's method and URL and answers with a fixed body; making a full Request (URL
 * parsing, a Headers list, a body stream, a follower AbortSignal) and a full Response (a body
 * stream) costs far more than the handler itself. These stand-ins pass `instanceof` and behave as
 * the real objects, which they make on first use of anything they do not hold themselves.
 */

import { bridgedHeaderLines } from '../src/host.js';
import { Buffer } from 'node:buffer';
import type { Bytes, Environ } from '../src/types.js';
import { HttpError } from '../src/errors.js';
import { HOP_BY_HOP } from '../src/response-head.js';

type HeadersInit = ConstructorParameters<typeof Headers>[0];
type BodyInit = ConstructorParameters<typeof Response>[0];
type RequestInput = ConstructorParameters<typeof Request>[0];

const GlobalRequest = globalThis.Request;
const GlobalResponse = globalThis.Response;
/** The real Request behind a stand-in, for the constructors that need one. */
const REAL = Symbol('nsgi.realRequest');

/** Methods whose requests carry no body in the Fetch API. */
export const NO_BODY_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);
/** Methods Fetch normalizes to upper case (byte-case-insensitively), as `new Request()` does. */
const NORMALIZED = new Map(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'].map((m) => [m, m]));
const FORBIDDEN = new Set(['CONNECT', 'TRACE', 'TRACK']);
/** A target and a host that URL parsing would leave as written: no dot segments, nothing to escape. */
const PLAIN_TARGET = /^\/[!#-&(-;=?-[\]_a-z~]*$/;
const DOT_SEGMENT = /\/\.\.?(?:[/?#]|$)/;
const PLAIN_HOST = /^[a-z0-9.-]+(?::([1-9]\d{0,4}))?$/;
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const decoder = new TextDecoder();

/** A host URL parsing leaves as written: lower case, and a port (if any) in range and not the scheme's default. */
function plainHost(host: string, https: boolean): boolean {
  const m = PLAIN_HOST.exec(host);
  if (m === null) return false;
  // A host whose last label is a number is an IPv4 address to URL parsing ("127.1" is 127.0.0.1).
  const name = m[1] === undefined ? host : host.slice(0, host.lastIndexOf(':'));
  const last = name.slice(name.lastIndexOf('.', name.length - 2) + 1).replace(/\.$/, '');
  if (/^(?:\d+|0x[0-9a-f]*)$/.test(last) && !DOTTED_QUAD.test(name)) return false;
  if (m[1] === undefined) return true;
  const port = Number(m[1]);
  return port <= 65535 && port !== (https ? 443 : 80);
}

function unusable(): TypeError {
  return new TypeError('Body is unusable: it has already been read');
}

/** The request body as a ReadableStream pulled from wsgi.input. */
function inputStream(environ: Environ): ReadableStream<Uint8Array> {
  const input = environ['wsgi.input'];
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = await input.read(64 * 1024);
      if (chunk.length === 0) controller.close();
      else controller.enqueue(chunk);
    },
  });
}

/** The whole of a byte view as an ArrayBuffer of its own. */
function ownBuffer(bytes: Bytes): ArrayBuffer {
  const buffer = bytes.buffer as ArrayBuffer;
  if (bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength) return buffer;
  return buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

/**
 * A Request made from the environ: method, URL, headers and signal on demand, the body read straight
 * from wsgi.input by arrayBuffer()/text()/json()/bytes(), and a real Request behind everything else.
 */
export class EnvironRequest {
  readonly #environ: Environ;
  readonly #url: string;
  readonly #method: string;
  #headers: Headers | undefined;
  #real: Request | undefined;
  /** The body was read directly from wsgi.input. */
  #used = false;

  constructor(environ: Environ, url: string) {
    const method = environ.REQUEST_METHOD;
    const upper = method.toUpperCase();
    // Not a bad request, one a Fetch handler cannot be given: 501, as for any method not implemented.
    if (FORBIDDEN.has(upper))
      throw new HttpError(501, `${method} is unsupported: the Fetch API cannot carry it to the handler`);
    this.#environ = environ;
    this.#method = NORMALIZED.get(upper) ?? method;
    const schemeEnd = url.indexOf('://') + 3;
    const pathStart = url.indexOf('/', schemeEnd);
    const host = url.slice(schemeEnd, pathStart);
    const target = url.slice(pathStart);
    // As `new Request(url).url` would read, without parsing when nothing would change.
    this.#url =
      plainHost(host, schemeEnd === 8) && PLAIN_TARGET.test(target) && !DOT_SEGMENT.test(target)
        ? url
        : new URL(url).href;
  }

  get method(): string {
    return this.#method;
  }

  get url(): string {
    return this.#url;
  }

  get headers(): Headers {
    if (this.#real !== undefined) return this.#real.headers;
    if (this.#headers !== undefined) return this.#headers;
    const headers = new Headers();
    const environ = this.#environ;
    for (const [name, value] of bridgedHeaderLines(environ)) {
      const lower = name.toLowerCase();
      // Framing belongs to the hop: the Request carries the body as a stream of its own.
      if (HOP_BY_HOP.has(lower) || lower === 'cookie') continue;
      headers.append(name, value);
    }
    // Headers would join several Cookie lines with ", "; the environ's "; " join is the one cookies use.
    if (typeof environ.HTTP_COOKIE === 'string') headers.set('cookie', environ.HTTP_COOKIE);
    return (this.#headers = headers);
  }

  get signal(): AbortSignal {
    return this.#real?.signal ?? this.#environ['nsgi.signal'];
  }

  get bodyUsed(): boolean {
    return this.#used || (this.#real?.bodyUsed ?? false);
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.#request().body;
  }

  /** The real Request, for `new Request(standIn)` and `fetch(standIn)` (see standInAware*). */
  [REAL](): Request {
    return this.#request();
  }

  /** The real Request, made once; after a direct read its body is an empty, used stream. */
  #request(): Request {
    if (this.#real !== undefined) return this.#real;
    const hasBody = !NO_BODY_METHODS.has(this.#method);
    let body: ReadableStream<Uint8Array> | null = null;
    if (hasBody) body = this.#used ? new ReadableStream({ start: (c) => c.close() }) : inputStream(this.#environ);
    this.#real = new GlobalRequest(this.#url, {
      method: this.#method,
      headers: this.headers,
      body,
      signal: this.#environ['nsgi.signal'],
      duplex: 'half',
    });
    // Read already: the stream stays locked, as a used body's is.
    if (this.#used) this.#real.body?.getReader();
    return this.#real;
  }

  /** The whole body, read from wsgi.input without a stream in between. */
  async #bytes(): Promise<Bytes> {
    if (this.#real !== undefined) return new Uint8Array(await this.#real.arrayBuffer());
    if (this.#used) throw unusable();
    this.#used = true;
    if (NO_BODY_METHODS.has(this.#method)) return new Uint8Array(0);
    return this.#environ['wsgi.input'].read();
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return ownBuffer(await this.#bytes());
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(ownBuffer(await this.#bytes()));
  }

  async text(): Promise<string> {
    return decoder.decode(await this.#bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  blob(): Promise<Blob> {
    return this.#request().blob();
  }

  formData(): Promise<FormData> {
    return this.#request().formData();
  }

  clone(): Request {
    if (this.#used) throw unusable();
    return this.#request().clone();
  }

  static {
    // The rest of Request's attributes, from the real one.
    for (const key of [
      'cache',
      'credentials',
      'destination',
      'duplex',
      'integrity',
      'keepalive',
      'mode',
      'redirect',
      'referrer',
      'referrerPolicy',
    ] as const) {
      Object.defineProperty(EnvironRequest.prototype, key, {
        get(this: EnvironRequest) {
          return (this.#request() as unknown as Record<string, unknown>)[key];
        },
      });
    }
  }
}

Object.setPrototypeOf(EnvironRequest.prototype, GlobalRequest.prototype);

/** What a Response made from a plain body holds until something needs the real one. */
export interface HeldResponse {
  status: number;
  statusText: string;
  body: string | Bytes | null;
  /**
   * As given to the constructor (possibly another Response's live Headers, only ever read from), until
   * `headers` is read: then a Headers of this Response's own.
   */
  headers: HeadersInit | undefined;
  /** `headers` is this Response's own Headers, default content type included. */
  owned: boolean;
}

const HELD = Symbol('nsgi.heldResponse');
/** Statuses a Response may not have a body with; `new Response()` refuses the pair. */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REASON = /^[\t\x20-\x7e\x80-\xff]*$/;
const TEXT_PLAIN = 'text/plain;charset=UTF-8';

/**
 * `globalThis.Response` while fromFetchHandler is in use: a Response from a string, bytes or nothing
 * keeps them as given, so the bridge sends them without a body stream; anything else (or any use of
 * the body) makes the real Response. Statuses and reasons the real one would refuse are refused the
 * same way, by making it.
 */
export class HeldBodyResponse {
  [HELD]: HeldResponse | undefined;
  #real: Response | undefined;

  static [Symbol.hasInstance](value: unknown): boolean {
    if (this === HeldBodyResponse) return value instanceof GlobalResponse;
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  constructor(body?: BodyInit | null, init?: ResponseInit) {
    const status = init?.status ?? 200;
    const statusText = init?.statusText ?? '';
    let bytes: string | Bytes | null | undefined;
    if (body === undefined || body === null) bytes = null;
    else if (typeof body === 'string' || body instanceof Uint8Array) bytes = body;
    else if (body instanceof ArrayBuffer) bytes = new Uint8Array(body);
    const plain =
      bytes !== undefined &&
      typeof status === 'number' &&
      Number.isInteger(status) &&
      status >= 200 &&
      status <= 599 &&
      !(bytes !== null && NULL_BODY_STATUS.has(status)) &&
      typeof statusText === 'string' &&
      (statusText === '' || REASON.test(statusText));
    if (plain) this[HELD] = { status, statusText, body: bytes!, headers: init?.headers, owned: false };
    else this.#real = new GlobalResponse(body, init);
  }

  #response(): Response {
    if (this.#real !== undefined) return this.#real;
    const held = this[HELD]!;
    this[HELD] = undefined;
    this.#real = new GlobalResponse(held.body as BodyInit | null, {
      status: held.status,
      statusText: held.statusText,
      headers: held.headers,
    });
    return this.#real;
  }

  get status(): number {
    return this[HELD]?.status ?? this.#response().status;
  }

  get statusText(): string {
    return this[HELD]?.statusText ?? this.#response().statusText;
  }

  get ok(): boolean {
    const status = this.status;
    return status >= 200 && status <= 299;
  }

  get headers(): Headers {
    const held = this[HELD];
    if (held === undefined) return this.#response().headers;
    if (held.owned) return held.headers as Headers;
    // A copy, as the real constructor makes: the init may be another Response's headers.
    const headers = new Headers(held.headers);
    if (typeof held.body === 'string' && !headers.has('content-type')) headers.set('content-type', TEXT_PLAIN);
    held.headers = headers;
    held.owned = true;
    return headers;
  }

  get type(): Response['type'] {
    return this[HELD] !== undefined ? 'default' : this.#response().type;
  }

  get url(): string {
    return this[HELD] !== undefined ? '' : this.#response().url;
  }

  get redirected(): boolean {
    return this[HELD] !== undefined ? false : this.#response().redirected;
  }

  get bodyUsed(): boolean {
    return this[HELD] !== undefined ? false : this.#response().bodyUsed;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.#response().body;
  }

  static {
    for (const key of ['arrayBuffer', 'blob', 'bytes', 'clone', 'formData', 'json', 'text'] as const) {
      if (!(key in GlobalResponse.prototype)) continue;
      Object.defineProperty(HeldBodyResponse.prototype, key, {
        value(this: HeldBodyResponse, ...args: unknown[]) {
          const real = this.#response() as unknown as Record<string, (...a: unknown[]) => unknown>;
          return real[key]!(...args);
        },
        writable: true,
        configurable: true,
      });
    }
  }
}
Object.setPrototypeOf(HeldBodyResponse, GlobalResponse);
Object.setPrototypeOf(HeldBodyResponse.prototype, GlobalResponse.prototype);

/** What the bridge sends for a Response: status, reason, header pairs and, for a held body, its bytes. */
export interface ResponseParts {
  status: number;
  statusText: string;
  headers: Array<[string, string]>;
  /** The whole body when the Response holds it as given; undefined when it must be read from `body`. */
  bytes: Bytes | null | undefined;
}

/**
 * The parts of any Fetch Response. One made by HeldBodyResponse and not yet used gives its body as
 * given, and its headers with the default text content type a string body gets.
 */
export function responseParts(response: Response): ResponseParts {
  const held = (response as unknown as { [HELD]?: HeldResponse })[HELD];
  if (held === undefined) {
    return {
      status: response.status,
      statusText: response.statusText,
      headers: headerPairs(response.headers),
      bytes: undefined,
    };
  }
  const headers = headerPairs(held.headers);
  const body = held.body;
  if (typeof body === 'string' && !held.owned && !headers.some(([name]) => name === 'content-type'))
    headers.push(['content-type', TEXT_PLAIN]);
  return {
    status: held.status,
    statusText: held.statusText,
    headers,
    bytes: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  };
}

/** A Request stand-in's real Request; anything else as it is. */
export function realRequest<T>(input: T): T | Request {
  return input instanceof EnvironRequest ? input[REAL]() : input;
}

/**
 * `Request` taking a stand-in as its input (`new Request(c.req.raw, init)`, as Hono's bodyLimit does),
 * which `Base`'s constructor refuses for want of its internal state; otherwise `Base` itself, and
 * `instanceof` answers as for `Base`.
 */
function standInAwareRequest(Base: typeof Request): typeof Request {
  const StandInAwareRequest = class Request extends Base {
    static override [Symbol.hasInstance](value: unknown): boolean {
      if (this === StandInAwareRequest) return value instanceof Base;
      return Function.prototype[Symbol.hasInstance].call(this, value);
    }

    constructor(input: RequestInput, init?: RequestInit) {
      super(realRequest(input), init);
    }
  };
  return StandInAwareRequest;
}

/** `fetch` taking a stand-in as its input too. */
function standInAwareFetch(base: typeof fetch): typeof fetch {
  return (input, init) => base(realRequest(input), init);
}

/** The Request and fetch globals this module installed last. */
let installedRequest: unknown;
let installedFetch: unknown;

function setGlobal(name: 'Response' | 'Request' | 'fetch', value: unknown): void {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

/**
 * Makes the globals work with the stand-ins: HeldBodyResponse as `Response` (unless something else
 * has replaced the built-in one: a Response of any implementation will do), and `Request` and
 * `fetch` as whatever they are now, taking a Request stand-in as input. Called on every request: a
 * library that installs its own Request later (as @hono/node-server does) is wrapped in turn.
 */
export function installStandIns(): void {
  if (globalThis.Response === GlobalResponse) setGlobal('Response', HeldBodyResponse);
  const request = globalThis.Request;
  if (request !== installedRequest) setGlobal('Request', (installedRequest = standInAwareRequest(request)));
  const fetch = globalThis.fetch;
  if (fetch !== installedFetch) setGlobal('fetch', (installedFetch = standInAwareFetch(fetch)));
}

/** Header pairs from any HeadersInit, names lower-cased and values trimmed as Headers would; Set-Cookie lines kept apart. */
export function headerPairs(init: HeadersInit | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (init === undefined || init === null) return out;
  if (init instanceof Headers) {
    for (const [name, value] of init) if (name !== 'set-cookie') out.push([name, value]);
    for (const cookie of init.getSetCookie()) out.push(['set-cookie', cookie]);
    return out;
  }
  if (typeof (init as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const pair of init as Iterable<Iterable<string>>) {
      const [name, value, ...rest] = pair;
      if (value === undefined || rest.length > 0)
        throw new TypeError('Response headers: each entry must be a [name, value] pair');
      out.push([String(name).toLowerCase(), trimValue(String(value))]);
    }
    return out;
  }
  for (const name of Object.keys(init))
    out.push([name.toLowerCase(), trimValue(String((init as Record<string, string>)[name]))]);
  return out;
}

function trimValue(value: string): string {
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  const ws = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
  return ws(first) || ws(last) ? value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '') : value;
}
