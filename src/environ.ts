/**
 * The environ builder: the one place where a request becomes CGI and `wsgi.*` keys.
 * Every transport describes its request as a RequestInfo and gets the same environ back.
 */

import proxyaddr from 'proxy-addr';
import { HttpError } from './errors.js';
import { fileWrapper } from './file-wrapper.js';
import { lazySignal, type RequestAbort } from './abort.js';
import { PositionalMemo } from './host.js';
import { EMPTY_INPUT, RequestInput, type BodyInput, type BodySource } from './input.js';
import { internalize, percentDecodeNative } from './native.js';
import {
  checkHost,
  repeatedFieldError,
  settleFraming,
  targetForm,
  TargetForm,
  targetTooLongError,
  type HeadFields,
  type HeadFraming,
} from './request-head.js';
import { ownsPath } from './script-name.js';
import type { ProxyHeader } from './server/proxy-protocol.js';
import type { Environ, ErrorStream } from './types.js';
import { VERSION } from './version.js';
import { websocketHandshake, type UpgradeSource } from './websocket.js';

/** A transport's description of one request, before any CGI mapping. */
export interface RequestInfo {
  /** The method token exactly as received. */
  method: string;
  /** The raw request-target as received, one character per byte. */
  target: string;
  /** `"1.1"`, `"1.0"`. */
  httpVersion: string;
  /** Header names and values as received, flattened: `[name0, value0, name1, value1, ...]`. */
  rawHeaders: readonly string[];
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
  localAddress?: string | undefined;
  localPort?: number | undefined;
  /** True on a TLS connection. */
  tls: boolean;
  /**
   * The mount prefix, percent-encoded as in the target (e.g. Express's `req.baseUrl`). The target's
   * path must start with it on a segment boundary; it becomes SCRIPT_NAME and the rest PATH_INFO.
   */
  scriptName?: string | undefined;
  /**
   * The percent-encoded path the host routed on, when it differs from the target's because
   * middleware rewrote the URL (Express's `req.url`); it must start with `scriptName`. Default:
   * the target's path. REQUEST_URI and QUERY_STRING still come from the target.
   */
  path?: string | undefined;
  /** This request's `wsgi.errors`, when the host logs per request (Fastify's `request.log`). Default: the server's. */
  errors?: ErrorStream | undefined;
  /**
   * The body's framing when the host's own parser applied the request-head rules (the raw
   * server's): they are not applied again. Default: settled from the header lines.
   */
  framing?: HeadFraming | undefined;
  /**
   * The request has a body that no header line frames, of unknown length (a Fetch Request's
   * in-process stream): it is read to its end.
   */
  streamed?: boolean | undefined;
  /** The de-framed body. */
  body: BodySource;
  /** Aborted by the transport when the client disconnects or the server shuts down. */
  abort: RequestAbort;
  /**
   * Sends `100 Continue`. The core calls it at most once: when the app first reads a body sent with
   * `Expect: 100-continue`, and only if the response has not started.
   */
  sendContinue?: (() => void) | undefined;
  /**
   * The host can hand the connection over for a WebSocket (SPEC §16): a handshake then reaches the
   * app with `nsgi.websocket`. Absent on hosts that cannot.
   */
  upgrade?: UpgradeSource | undefined;
  /**
   * HTTP/2's `:authority`, which stands for Host (SPEC §17.1); `rawHeaders` then holds the regular
   * fields only, never a pseudo-header.
   */
  authority?: string | undefined;
  /** The PROXY protocol header the connection began with: `environ['nsgi.proxy']` (SPEC §18). */
  proxy?: ProxyHeader | undefined;
}

/** What a deployer may set; every field has a safe default. */
export interface EnvironOptions {
  /** SERVER_NAME; default: the listening address. */
  serverName?: string | undefined;
  /** SERVER_PORT; default: the listening port (80/443 by scheme on a unix socket). */
  serverPort?: number | string | undefined;
  /** Largest request body accepted, in bytes (413 above). Default 1 GiB. */
  maxBodySize?: number | undefined;
  /** Longest request-target accepted, in characters (414 above). Default 8192. */
  maxRequestTarget?: number | undefined;
  /**
   * Which peers may set REMOTE_ADDR and wsgi.url_scheme through X-Forwarded-For / X-Forwarded-Proto:
   * `false` (default: none), `true` (any), a hop count, or addresses/CIDR ranges/`'loopback'` etc.
   * (the forms Express's `trust proxy` takes), or a function `(addr, hopIndex) => boolean`.
   */
  trustProxy?: boolean | number | string | readonly string[] | ((addr: string, i: number) => boolean) | undefined;
  /** Header names containing `_` are dropped (default) or refused with 400. */
  underscoreHeaders?: 'drop' | 'refuse' | undefined;
  /** `wsgi.multiprocess`: true when equivalent app instances run in other processes. */
  multiprocess?: boolean | undefined;
  /** Extra name/value pairs copied into every environ (deployer configuration). */
  environ?: Readonly<Record<string, unknown>> | undefined;
  /** Where `wsgi.errors` writes. */
  errors: ErrorStream;
}

/** Options after defaults, compiled once per server. */
export interface CompiledEnvironOptions {
  serverName: string | undefined;
  serverPort: string | undefined;
  maxBodySize: number;
  maxRequestTarget: number;
  trust: ((addr: string, i: number) => boolean) | undefined;
  refuseUnderscore: boolean;
  multiprocess: boolean;
  extra: Readonly<Record<string, unknown>> | undefined;
  errors: ErrorStream;
}

export const DEFAULT_MAX_BODY_SIZE = 1024 * 1024 * 1024;
export const DEFAULT_MAX_REQUEST_TARGET = 8192;

export function compileEnvironOptions(options: EnvironOptions): CompiledEnvironOptions {
  const maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
  if (!(maxBodySize >= 0))
    throw new RangeError(`maxBodySize must be a number >= 0, got ${String(options.maxBodySize)}`);
  const maxRequestTarget = options.maxRequestTarget ?? DEFAULT_MAX_REQUEST_TARGET;
  if (!(maxRequestTarget > 0)) {
    throw new RangeError(`maxRequestTarget must be a number > 0, got ${String(options.maxRequestTarget)}`);
  }
  const serverPort = options.serverPort === undefined ? undefined : String(options.serverPort);
  if (serverPort !== undefined && !/^[0-9]+$/.test(serverPort)) {
    throw new RangeError(`serverPort must be digits, got ${JSON.stringify(options.serverPort)}`);
  }
  return {
    serverName: options.serverName,
    serverPort,
    maxBodySize,
    maxRequestTarget,
    trust: compileTrust(options.trustProxy),
    refuseUnderscore: options.underscoreHeaders === 'refuse',
    multiprocess: options.multiprocess ?? false,
    extra: deployerPairs(options.environ),
    errors: options.errors,
  };
}

/** The deployer's environ pairs, less `nsgi.signal`, which belongs to the server. */
function deployerPairs(pairs: EnvironOptions['environ']): CompiledEnvironOptions['extra'] {
  if (pairs === undefined || !Object.hasOwn(pairs, 'nsgi.signal')) return pairs;
  const { 'nsgi.signal': _signal, ...rest } = pairs;
  return rest;
}

export function compileTrust(t: EnvironOptions['trustProxy']): CompiledEnvironOptions['trust'] {
  if (t === undefined || t === false) return undefined;
  if (t === true) return () => true;
  if (typeof t === 'function') return t;
  if (typeof t === 'number') return (_addr, i) => i < t;
  const list = typeof t === 'string' ? t.split(',').map((s) => s.trim()) : [...t];
  try {
    return proxyaddr.compile(list);
  } catch (err) {
    throw new RangeError(
      `trustProxy: ${(err as Error).message}; give IP addresses, CIDR ranges, 'loopback', 'linklocal' or ` +
        `'uniquelocal', a hop count, true, or a function (addr, hop) => boolean`,
      { cause: err },
    );
  }
}

/** What a header name means to the builder. */
const enum HeaderKind {
  Plain,
  Cookie,
  ContentType,
  ContentLength,
  TransferEncoding,
  Host,
  Expect,
  ForwardedFor,
  ForwardedProto,
  /** RFC 7239's Forwarded: read when no X-Forwarded-For/-Proto came. */
  Forwarded,
  /** A name containing '_': dropped (or refused), since it would be confused with a '-' name. */
  Underscore,
  // Headers nearly every request carries: each is stored at its own site (see the header loop).
  Connection,
  UserAgent,
  Accept,
  AcceptEncoding,
  AcceptLanguage,
  /** Noted, so only a request that carries Upgrade is looked at as a WebSocket handshake. */
  Upgrade,
}

/**
 * One CGI key and what to do with it, shared by every spelling of the header name ('Host', 'host'),
 * so that `seen` can tell a repeated header without reading the environ back.
 */
interface HeaderEntry {
  /**
   * 'HTTP_ACCEPT', 'CONTENT_TYPE', ...; internalized, so storing it as a property key needs no
   * string-table lookup.
   */
  readonly key: string;
  readonly kind: HeaderKind;
  /** False for an entry made once because the caches are full: whether it repeats is read from the environ. */
  readonly shared: boolean;
  /** The number of the last build that set this key. */
  seen: number;
}

/** Header name as received -> its entry, so the common names are mapped once per process. */
const entriesByName = new Map<string, HeaderEntry>();
/**
 * CGI key -> its entry, so every spelling of a name gets the same entry. The entries that carry a rule
 * are made here, up front, so they are always shared and a repeat of them is always seen.
 */
const entriesByKey = new Map<string, HeaderEntry>(
  (
    [
      ['CONTENT_TYPE', HeaderKind.ContentType],
      ['CONTENT_LENGTH', HeaderKind.ContentLength],
      ['HTTP_TRANSFER_ENCODING', HeaderKind.TransferEncoding],
      ['HTTP_HOST', HeaderKind.Host],
      ['HTTP_COOKIE', HeaderKind.Cookie],
      ['HTTP_EXPECT', HeaderKind.Expect],
      ['HTTP_X_FORWARDED_FOR', HeaderKind.ForwardedFor],
      ['HTTP_X_FORWARDED_PROTO', HeaderKind.ForwardedProto],
      ['HTTP_FORWARDED', HeaderKind.Forwarded],
      ['HTTP_CONNECTION', HeaderKind.Connection],
      ['HTTP_USER_AGENT', HeaderKind.UserAgent],
      ['HTTP_ACCEPT', HeaderKind.Accept],
      ['HTTP_ACCEPT_ENCODING', HeaderKind.AcceptEncoding],
      ['HTTP_ACCEPT_LANGUAGE', HeaderKind.AcceptLanguage],
      ['HTTP_UPGRADE', HeaderKind.Upgrade],
    ] as const
  ).map(([key, kind]) => [key, { key, kind, shared: true, seen: -1 }]),
);
const UNDERSCORE: HeaderEntry = { key: '', kind: HeaderKind.Underscore, shared: true, seen: -1 };
const MAX_CACHED_NAMES = 2048;
/** Numbers each buildEnviron() call, for HeaderEntry.seen; builds never interleave, being synchronous. */
let build = 0;

function headerEntry(name: string): HeaderEntry {
  const cached = entriesByName.get(name);
  if (cached !== undefined) return cached;
  let entry: HeaderEntry | undefined;
  if (name.includes('_')) entry = UNDERSCORE;
  else {
    const lower = name.toLowerCase();
    const key =
      lower === 'content-type'
        ? 'CONTENT_TYPE'
        : lower === 'content-length'
          ? 'CONTENT_LENGTH'
          : internalize('HTTP_' + name.toUpperCase().replace(/-/g, '_'));
    entry = entriesByKey.get(key);
    if (entry === undefined) {
      // Thousands of distinct names come from a client probing, not a browser: map them uncached.
      if (entriesByKey.size >= MAX_CACHED_NAMES) return { key, kind: HeaderKind.Plain, shared: false, seen: -1 };
      entry = { key, kind: HeaderKind.Plain, shared: true, seen: -1 };
      entriesByKey.set(key, entry);
    }
  }
  if (entriesByName.size < MAX_CACHED_NAMES) entriesByName.set(name, entry);
  return entry;
}

/** The entries of the last request's header names, by position. */
const entriesByPosition = new PositionalMemo<HeaderEntry>(64);

export function mappedAddress(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

interface ServerIdentity {
  address: string | undefined;
  localPort: number | undefined;
  tls: boolean;
  name: string;
  port: string;
}

/** The last SERVER_NAME/SERVER_PORT computed: a server listens on few addresses, so it rarely changes. */
let lastServer: ServerIdentity | undefined;
let lastOptions: CompiledEnvironOptions | undefined;

function serverIdentity(req: RequestInfo, options: CompiledEnvironOptions): ServerIdentity {
  const last = lastServer;
  if (
    last !== undefined &&
    lastOptions === options &&
    last.address === req.localAddress &&
    last.localPort === req.localPort &&
    last.tls === req.tls
  ) {
    return last;
  }
  return identifyServer(req, options);
}

/** serverIdentity() for a new local address: apart, so the check above stays small enough to inline. */
function identifyServer(req: RequestInfo, options: CompiledEnvironOptions): ServerIdentity {
  const local = req.localAddress === undefined ? undefined : mappedAddress(req.localAddress);
  lastOptions = options;
  return (lastServer = {
    address: req.localAddress,
    localPort: req.localPort,
    tls: req.tls,
    name: options.serverName ?? (local === undefined ? 'localhost' : local.includes(':') ? `[${local}]` : local),
    port: options.serverPort ?? (req.localPort === undefined ? (req.tls ? '443' : '80') : String(req.localPort)),
  });
}

/** The built environ with the body stream and what the gateway needs about the request. */
export interface BuiltEnviron {
  environ: Environ;
  input: BodyInput;
  /** Declared body length; null for a chunked body of unknown length. */
  bodyLength: number | null;
  /** True when the client asked for `100 Continue` and the host sends it when the app first reads. */
  expectsContinue: boolean;
  /** On a valid WebSocket handshake (SPEC §16), the connection the host can hand over. */
  websocket: UpgradeSource | undefined;
}

/**
 * Builds the environ for a request, or throws HttpError for a request the server must refuse
 * (400, 404 outside the mount, 413, 414, 417, 501). Phases: the target, the mount, the headers
 * (with the request-head rules, unless the host's parser applied them), the peer and scheme, the body.
 */
export function buildEnviron(req: RequestInfo, options: CompiledEnvironOptions): BuiltEnviron {
  const target = req.target;
  if (target.length > options.maxRequestTarget) throw targetTooLongError(options.maxRequestTarget);
  const parts = splitTarget(req.method, target);
  const asterisk = parts.path === '*';
  if (req.path !== undefined && !asterisk) {
    parts.path = req.path;
    parts.escaped = true;
  }
  mountPaths(parts, req.scriptName, asterisk);

  const server = serverIdentity(req, options);
  // Built first so the header loop writes HTTP_* keys straight into it; wsgi.input and
  // wsgi.url_scheme are settled once the headers are known.
  const environ = {
    REQUEST_METHOD: req.method,
    SCRIPT_NAME: parts.scriptName,
    PATH_INFO: parts.pathInfo,
    QUERY_STRING: parts.query,
    REQUEST_URI: target,
    SERVER_NAME: server.name,
    SERVER_PORT: server.port,
    SERVER_PROTOCOL: req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`,
    SERVER_SOFTWARE: SOFTWARE,
    GATEWAY_INTERFACE: 'CGI/1.1',
    'wsgi.version': WSGI_VERSION,
    'wsgi.url_scheme': req.tls ? 'https' : 'http',
    'wsgi.input': EMPTY_INPUT,
    'wsgi.errors': req.errors ?? options.errors,
    'wsgi.multithread': false,
    'wsgi.multiprocess': options.multiprocess,
    'wsgi.run_once': false,
    'wsgi.input_terminated': true,
    'wsgi.file_wrapper': fileWrapper,
    'nsgi.raw_headers': EMPTY_PAIRS,
    'nsgi.signal': lazySignal(req.abort),
  } as Environ;
  const env = environ as unknown as Record<string, string | undefined>;

  const authority = parts.authority;
  // A head the host's parser checked (the raw server's) is not checked again.
  const checked = req.framing;
  const fields = mapHeaders(env, req.rawHeaders, options.refuseUnderscore, checked === undefined);
  environ['nsgi.raw_headers'] = fields.pairs;
  fields.http11 = req.httpVersion !== '1.0' && req.httpVersion !== '0.9';
  if (req.authority !== undefined) takeAuthority(env, fields, req.authority);
  let framing = checked ?? settleFraming(fields, options.maxBodySize);
  // A body no header line frames, which the host says is there (a Fetch stream), is read to its end.
  if (req.streamed === true && framing.bodyLength === 0) framing = UNKNOWN_LENGTH;
  // An absolute-form target's authority replaces Host (RFC 9112 §3.2.2).
  if (authority !== undefined) env.HTTP_HOST = authority;
  if (fields.contentLength !== undefined && framing.bodyLength !== null) env.CONTENT_LENGTH = fields.contentLength;

  if (fields.forwarded !== undefined && fields.forwardedFor === undefined && fields.forwardedProto === undefined) {
    const read = readForwarded(fields.forwarded);
    if (read !== undefined) {
      fields.forwardedFor = read.for;
      fields.forwardedProto = read.proto;
    }
  }
  setPeer(environ, req, options, fields.forwardedFor, fields.forwardedProto);
  const websocket =
    fields.upgrade &&
    req.upgrade !== undefined &&
    websocketHandshake(req.method, req.httpVersion, env, framing.bodyLength !== 0)
      ? req.upgrade
      : undefined;

  const bodyLength = framing.bodyLength;
  const expectsContinue = framing.expectContinue && req.sendContinue !== undefined;
  let input = EMPTY_INPUT;
  if (bodyLength !== 0) {
    input = new RequestInput(req.body, {
      maxBodySize: options.maxBodySize,
      length: bodyLength ?? undefined,
      onFirstRead: expectsContinue ? req.sendContinue : undefined,
    });
    environ['wsgi.input'] = input;
  }
  if (req.proxy !== undefined) environ['nsgi.proxy'] = req.proxy;
  if (options.extra !== undefined) Object.assign(environ, options.extra);
  return { environ, input, bodyLength, expectsContinue, websocket };
}

/** The target's parts, as splitTarget() gives them. */
interface TargetParts {
  path: string;
  query: string;
  /** The path may hold percent-escapes. */
  escaped: boolean;
  /** An absolute-form target's authority. */
  authority: string | undefined;
  /** Set by mountPaths(). */
  scriptName: string;
  pathInfo: string;
}

/** A body of unknown length, read to its end. */
const UNKNOWN_LENGTH: HeadFraming = Object.freeze({ bodyLength: null, expectContinue: false });

const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?]*)([^?]*)(?:\?(.*))?$/;

/**
 * Splits the target into path and query (RFC 9112 §3.2), into `parts`: the query starts at the first
 * '?', and a '#' ends the target. Its form is checked against the method (targetForm).
 */
function splitTarget(method: string, target: string): TargetParts {
  const form = targetForm(method, target);
  // Short targets, nearly all of them, are scanned here (two indexOf() calls cost more than the
  // scan), which also tells whether the path has escapes to decode.
  let q = -1;
  let end = target.length;
  let escaped = true;
  if (end > 64) {
    const hash = target.indexOf('#');
    if (hash !== -1) end = hash;
    q = target.indexOf('?');
    if (q >= end) q = -1;
  } else {
    escaped = false;
    for (let i = 0; i < end; i++) {
      const c = target.charCodeAt(i);
      if (c === 0x23 /* # */) {
        end = i;
        break;
      }
      if (c === 0x3f /* ? */) {
        if (q === -1) q = i;
      } else if (c === 0x25 /* % */ && q === -1) escaped = true;
    }
  }
  const t = end === target.length ? target : target.slice(0, end);
  if (form === TargetForm.Origin) {
    return {
      path: q === -1 ? t : t.slice(0, q),
      query: q === -1 ? '' : t.slice(q + 1),
      escaped,
      authority: undefined,
      scriptName: '',
      pathInfo: '',
    };
  }
  return otherTargetParts(form, t, escaped);
}

/**
 * HTTP/2's `:authority` as HTTP_HOST: it obeys Host's syntax, and a Host field that names another
 * authority makes the request malformed (RFC 9113 §8.3.1).
 */
function takeAuthority(env: Record<string, string | undefined>, fields: MappedHeaders, authority: string): void {
  checkHost(authority);
  if (fields.hasHost && env.HTTP_HOST !== authority) {
    throw new HttpError(400, 'the Host header differs from :authority', { closeConnection: true });
  }
  env.HTTP_HOST = authority;
  fields.hasHost = true;
}

/** splitTarget() for an asterisk-form or absolute-form target: apart, so the common case inlines. */
function otherTargetParts(form: TargetForm, t: string, escaped: boolean): TargetParts {
  if (form === TargetForm.Asterisk) {
    return { path: '*', query: '', escaped, authority: undefined, scriptName: '', pathInfo: '' };
  }
  const m = ABSOLUTE.exec(t)!;
  const authority = m[1]!;
  // It stands in for Host, so it obeys Host's rules (no userinfo: RFC 9110 §4.2.4).
  checkHost(authority);
  return { path: m[2] || '/', query: m[3] ?? '', escaped: true, authority, scriptName: '', pathInfo: '' };
}

/** SCRIPT_NAME and PATH_INFO, into `parts`: the mount prefix must match the path on a segment boundary (404). */
function mountPaths(parts: TargetParts, prefix: string | undefined, asterisk: boolean): void {
  const { path, escaped } = parts;
  if (prefix === undefined || prefix === '' || asterisk) {
    parts.pathInfo = escaped ? percentDecodeNative(path) : path;
    return;
  }
  if (!ownsPath(prefix, path)) throw new HttpError(404, `path is outside the mount point ${JSON.stringify(prefix)}`);
  const rest = path.slice(prefix.length);
  parts.scriptName = percentDecodeNative(prefix);
  parts.pathInfo = escaped ? percentDecodeNative(rest) : rest;
}

/** What the header phase gathers besides the HTTP_* keys. */
interface MappedHeaders extends HeadFields {
  pairs: Array<readonly [string, string]>;
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  forwarded: string | undefined;
  /** An Upgrade field came: the request may be a WebSocket handshake. */
  upgrade: boolean;
}

/**
 * The header lines as CGI keys in `env`, in one pass: repeats joined (Cookie with "; "), names with
 * '_' dropped or refused, the request-head fields (Host, Content-Length, Transfer-Encoding, Expect)
 * checked and gathered for settleFraming.
 */
function mapHeaders(
  env: Record<string, string | undefined>,
  raw: readonly string[],
  refuseUnderscore: boolean,
  check: boolean,
): MappedHeaders {
  const pairs = new Array<readonly [string, string]>(raw.length >> 1);
  const fields: MappedHeaders = {
    http11: true,
    hasHost: false,
    contentLength: undefined,
    transferEncoding: undefined,
    expect: undefined,
    pairs,
    forwardedFor: undefined,
    forwardedProto: undefined,
    forwarded: undefined,
    upgrade: false,
  };
  const stamp = ++build;
  for (let i = 0; i < raw.length; i += 2) {
    let name = raw[i]!;
    const value = trimOws(raw[i + 1]!);
    const at = i >> 1;
    let entry = entriesByPosition.get(at, name);
    if (entry === undefined) {
      entry = headerEntry(name);
      entriesByPosition.set(at, name, entry);
    } else name = entriesByPosition.nameAt(at);
    pairs[at] = [name, raw[i + 1]!];
    const repeated = entry.shared ? entry.seen === stamp : env[entry.key] !== undefined;
    entry.seen = stamp;
    switch (entry.kind) {
      case HeaderKind.Underscore:
        if (refuseUnderscore) throw new HttpError(400, `header name ${JSON.stringify(name)} contains '_'`);
        continue;
      case HeaderKind.ContentType:
        if (repeated) throw repeatedFieldError('Content-Type');
        env.CONTENT_TYPE = value;
        continue;
      case HeaderKind.ContentLength:
        if (repeated) throw repeatedFieldError('Content-Length');
        fields.contentLength = value;
        continue;
      case HeaderKind.TransferEncoding:
        fields.transferEncoding =
          fields.transferEncoding === undefined ? value : `${fields.transferEncoding}, ${value}`;
        continue;
      case HeaderKind.Host:
        if (repeated) throw repeatedFieldError('Host');
        if (check) checkHost(value);
        fields.hasHost = true;
        env.HTTP_HOST = value;
        continue;
      case HeaderKind.Expect:
        fields.expect = fields.expect === undefined ? value : `${fields.expect}, ${value}`;
        break;
      case HeaderKind.ForwardedFor:
        fields.forwardedFor = fields.forwardedFor === undefined ? value : `${fields.forwardedFor}, ${value}`;
        break;
      case HeaderKind.ForwardedProto:
        fields.forwardedProto = fields.forwardedProto === undefined ? value : `${fields.forwardedProto}, ${value}`;
        break;
      case HeaderKind.Forwarded:
        fields.forwarded = fields.forwarded === undefined ? value : `${fields.forwarded}, ${value}`;
        break;
      case HeaderKind.Upgrade:
        fields.upgrade = true;
        break;
      // The common headers, first seen, each get a store of their own: a named store site learns
      // the one or two object shapes it meets and is cheap, where the shared keyed store below
      // sees every header name and shape and has to look each up.
      case HeaderKind.Connection:
        if (repeated) break;
        env.HTTP_CONNECTION = value;
        continue;
      case HeaderKind.UserAgent:
        if (repeated) break;
        env.HTTP_USER_AGENT = value;
        continue;
      case HeaderKind.Accept:
        if (repeated) break;
        env.HTTP_ACCEPT = value;
        continue;
      case HeaderKind.AcceptEncoding:
        if (repeated) break;
        env.HTTP_ACCEPT_ENCODING = value;
        continue;
      case HeaderKind.AcceptLanguage:
        if (repeated) break;
        env.HTTP_ACCEPT_LANGUAGE = value;
        continue;
    }
    const key = entry.key;
    if (!repeated) env[key] = value;
    else env[key] = env[key] + (entry.kind === HeaderKind.Cookie ? '; ' : ', ') + value;
  }
  return fields;
}

/** REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme and HTTPS: the socket's, unless a trusted proxy says otherwise. */
function setPeer(
  environ: Environ,
  req: RequestInfo,
  options: CompiledEnvironOptions,
  forwardedFor: string | undefined,
  forwardedProto: string | undefined,
): void {
  const env = environ as unknown as Record<string, string | undefined>;
  const addr = req.remoteAddress;
  if (options.trust !== undefined && addr !== undefined && options.trust(addr, 0)) {
    setForwardedPeer(environ, req, options.trust, forwardedFor, forwardedProto);
  } else {
    if (addr !== undefined) env.REMOTE_ADDR = mappedAddress(addr);
    if (req.remotePort !== undefined) env.REMOTE_PORT = String(req.remotePort);
  }
  if (environ['wsgi.url_scheme'] === 'https') env.HTTPS = 'on';
}

/** setPeer() for a request from a trusted proxy: the client and scheme its X-Forwarded-* lines name. */
function setForwardedPeer(
  environ: Environ,
  req: RequestInfo,
  trust: NonNullable<CompiledEnvironOptions['trust']>,
  forwardedFor: string | undefined,
  forwardedProto: string | undefined,
): void {
  const env = environ as unknown as Record<string, string | undefined>;
  const addr = req.remoteAddress!;
  const chain = proxyaddr.all(
    { socket: { remoteAddress: addr }, headers: { 'x-forwarded-for': forwardedFor } } as never,
    trust,
  );
  if (chain.length > 1) env.REMOTE_ADDR = mappedAddress(chain[chain.length - 1]!);
  else {
    env.REMOTE_ADDR = mappedAddress(addr);
    if (req.remotePort !== undefined) env.REMOTE_PORT = String(req.remotePort);
  }
  if (forwardedProto !== undefined) {
    const protos = forwardedProto.split(',');
    const hops = Math.max(1, chain.length - 1);
    const p = protos[Math.max(0, protos.length - hops)]!.trim().toLowerCase();
    if (p === 'http' || p === 'https') environ['wsgi.url_scheme'] = p;
  }
}

/** One `for=`/`proto=` parameter value of a Forwarded element: a token, or a quoted string. */
const FORWARDED_PAIR = /^\s*([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[!#$%&'*+.^_`|~0-9A-Za-z:-]+)\s*$/;

/**
 * RFC 7239's Forwarded as X-Forwarded-For and X-Forwarded-Proto would say it: the hops' `for=`
 * addresses and `proto=` values, comma-separated, in order. Undefined when an element is malformed.
 */
function readForwarded(field: string): { for: string | undefined; proto: string | undefined } | undefined {
  const fors: string[] = [];
  const protos: string[] = [];
  for (const element of field.split(',')) {
    let hopFor = 'unknown';
    let hopProto: string | undefined;
    for (const pair of element.split(';')) {
      if (pair.trim() === '') continue;
      const m = FORWARDED_PAIR.exec(pair);
      if (m === null) return undefined;
      const name = m[1]!.toLowerCase();
      let value = m[2]!;
      if (value.startsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
      if (name === 'for') hopFor = forwardedNode(value);
      else if (name === 'proto') hopProto = value.toLowerCase();
    }
    fors.push(hopFor);
    protos.push(hopProto ?? '');
  }
  return { for: fors.join(', '), proto: protos.every((p) => p === '') ? undefined : protos.join(', ') };
}

/** A Forwarded node as an address: `[v6]:port` and `v4:port` without the port; anything else as given. */
function forwardedNode(node: string): string {
  if (node.startsWith('[')) {
    const end = node.indexOf(']');
    return end === -1 ? node : node.slice(1, end);
  }
  const colon = node.indexOf(':');
  return colon !== -1 && node.indexOf(':', colon + 1) === -1 ? node.slice(0, colon) : node;
}

/**
 * A field value without the optional whitespace around it (RFC 9110 §5.5: SP and HTAB only, so a
 * value's own bytes such as 0xA0 stay). The transports give values trimmed already; this is for
 * the ones that may not (a request injected in tests, a host that keeps them).
 */
function trimOws(v: string): string {
  const n = v.length;
  if (n === 0) return v;
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(n - 1);
  if (first !== 0x20 && first !== 0x09 && last !== 0x20 && last !== 0x09) return v;
  let s = 0;
  let e = n;
  while (s < e && (v.charCodeAt(s) === 0x20 || v.charCodeAt(s) === 0x09)) s++;
  while (e > s && (v.charCodeAt(e - 1) === 0x20 || v.charCodeAt(e - 1) === 0x09)) e--;
  return v.slice(s, e);
}

const WSGI_VERSION: readonly [1, 0] = Object.freeze([1, 0] as const);
const SOFTWARE = `nsgi/${VERSION}`;
const EMPTY_PAIRS: ReadonlyArray<readonly [string, string]> = Object.freeze([]);
