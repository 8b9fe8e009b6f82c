/**
 * The options of `nsgi serve`, as data: each flag's value, help and environment variable
 * (`NSGI_` + the flag in capitals, for containers). A flag given on the command line beats its
 * variable; every value is checked at start, and a bad one is refused naming the fix.
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import proxyaddr from 'proxy-addr';
import { encodeScriptName } from '../script-name.js';
import { CliError } from './load.js';

interface OptionSpec {
  readonly flag: string;
  readonly boolean?: true;
  /** The value's placeholder in the help, e.g. '<n>'. */
  readonly value?: string;
  readonly default?: string;
  readonly help: string;
}

interface Group {
  readonly title: string;
  readonly options: readonly OptionSpec[];
}

const GROUPS: readonly Group[] = [
  {
    title: 'Where to listen',
    options: [
      { flag: 'host', value: '<addr>', default: '127.0.0.1', help: 'address to listen on' },
      { flag: 'port', value: '<n>', default: '8080', help: 'port to listen on, 0 for any free port' },
      { flag: 'uds', value: '<path>', help: 'listen on this unix socket instead of host and port' },
      {
        flag: 'fd',
        value: '<n>',
        help: 'listen on an inherited socket file descriptor; under systemd socket activation (LISTEN_FDS) the first one is used by default',
      },
    ],
  },
  {
    title: 'What to serve',
    options: [
      {
        flag: 'server',
        value: '<name>',
        default: 'raw',
        help: 'raw (the bundled strict HTTP/1.1 server), node, express or fastify',
      },
      {
        flag: 'mount',
        value: '<prefix>',
        default: '',
        help: 'serve the app under a path prefix, e.g. /app (SCRIPT_NAME)',
      },
      {
        flag: 'key',
        value: '<file>',
        help: 'TLS with this PEM key (and --cert); raw, node and fastify then serve HTTP/2 and HTTP/1.1 by ALPN, express HTTP/1.1',
      },
      { flag: 'cert', value: '<file>', help: 'the PEM certificate for --key' },
      {
        flag: 'http2',
        boolean: true,
        help: 'without TLS: HTTP/2 with prior knowledge (h2c, for a proxy that speaks it), on --server node or fastify',
      },
      {
        flag: 'health-path',
        value: '<path>',
        help: 'answer this path from the server itself, never the app: 200 while serving, 503 once stopping',
      },
      { flag: 'no-access-log', boolean: true, help: 'do not print a line per request' },
    ],
  },
  {
    title: 'Behind a proxy',
    options: [
      {
        flag: 'forwarded-allow-ips',
        value: '<list>',
        default: '127.0.0.1,::1',
        help: "peers whose X-Forwarded-For/-Proto (or Forwarded) set REMOTE_ADDR and wsgi.url_scheme: addresses, CIDR ranges, 'loopback', or '*' for any",
      },
      {
        flag: 'proxy-protocol',
        value: '<mode>',
        default: 'off',
        help: 'off, v1, v2 or auto: connections from --proxy-allow-from begin with a PROXY protocol header (--server raw)',
      },
      {
        flag: 'proxy-allow-from',
        value: '<list>',
        default: '127.0.0.1,::1',
        help: 'the load balancers that may send a PROXY header: addresses or CIDR ranges',
      },
    ],
  },
  {
    title: 'Limits and timeouts (sizes in bytes, or with kb, mb, gb; times in seconds)',
    options: [
      { flag: 'max-body-size', value: '<size>', help: 'largest request body (413 above; default 1gb)' },
      {
        flag: 'max-request-target',
        value: '<n>',
        help: 'longest request-target in characters (414 above; default 8192)',
      },
      { flag: 'max-header-size', value: '<size>', help: 'largest request head (431 above; raw default 16kb)' },
      { flag: 'max-header-count', value: '<n>', help: 'most header fields per request (431 above; raw default 128)' },
      { flag: 'header-timeout', value: '<s>', help: 'time for a request head to arrive (raw default 10)' },
      { flag: 'keep-alive-timeout', value: '<s>', help: 'time an idle keep-alive connection is kept (raw default 5)' },
      {
        flag: 'request-timeout',
        value: '<s>',
        help: 'time for a request body to arrive (raw default 300; node:http: the whole request)',
      },
      {
        flag: 'send-timeout',
        value: '<s>',
        help: 'time a client may leave a response unread before it is cut off (default 60; --server raw)',
      },
      {
        flag: 'max-connections',
        value: '<n>',
        help: 'connections served at once; more are closed (raw default 10000)',
      },
    ],
  },
  {
    title: 'Processes',
    options: [
      {
        flag: 'workers',
        value: '<n>',
        help: 'run a process manager with n worker processes sharing the port (default: one process, no manager)',
      },
      {
        flag: 'timeout',
        value: '<s>',
        default: '30',
        help: 'with --workers: a worker whose event loop is silent this long is killed and replaced; 0 turns it off',
      },
      {
        flag: 'max-requests',
        value: '<n>',
        default: '0',
        help: 'with --workers: a worker retires gracefully after this many requests; 0: never',
      },
      {
        flag: 'max-requests-jitter',
        value: '<n>',
        default: '0',
        help: "adds 0 to n requests to each worker's --max-requests, so they do not retire together",
      },
      {
        flag: 'graceful-timeout',
        value: '<s>',
        default: '10',
        help: 'on stop or reload, time in-flight requests get to finish (also --shutdown-timeout)',
      },
      {
        flag: 'drain-delay',
        value: '<s>',
        default: '0',
        help: 'on stop, keep serving this long with --health-path answering 503 before the listener closes',
      },
      { flag: 'reload', boolean: true, help: "restart when the app's files change (development; not with --workers)" },
    ],
  },
];

const ALIASES: Readonly<Record<string, string>> = { 'shutdown-timeout': 'graceful-timeout' };

const SPECS = GROUPS.flatMap((g) => g.options);

export const envName = (flag: string): string => `NSGI_${flag.toUpperCase().replace(/-/g, '_')}`;

function helpLines(): string {
  const lines: string[] = [];
  for (const group of GROUPS) {
    lines.push(`${group.title}:`);
    for (const o of group.options) {
      const left = `  --${o.flag}${o.value === undefined ? '' : ` ${o.value}`}`;
      const text = o.default === undefined || o.default === '' ? o.help : `${o.help} (default ${o.default})`;
      const first = left.length < 27 ? left.padEnd(27) : `${left}\n${' '.repeat(27)}`;
      lines.push(first + wrap(text, 27, 100));
    }
    lines.push('');
  }
  return lines.join('\n');
}

function wrap(text: string, indent: number, width: number): string {
  const words = text.split(' ');
  const out: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && indent + line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line === '' ? w : `${line} ${w}`;
  }
  out.push(line);
  return out.join(`\n${' '.repeat(indent)}`);
}

export const USAGE = `Usage: nsgi serve <file>[:<export>] [options]

Serves an nsgi app. <file> is a .ts, .mts, .js or .mjs module (or $NSGI_APP); the app is its export
named <export>, else its "app" export, else its default export. The module may also export
startup() and shutdown(), run before the server takes connections and after it has drained.

${helpLines()}
Every option can also be set by its environment variable: NSGI_ and the flag in capitals,
e.g. NSGI_WORKERS=4, NSGI_FORWARDED_ALLOW_IPS=10.0.0.0/8, NSGI_HTTP2=1.

Signals: SIGTERM stops gracefully, SIGINT quickly (twice: at once). With --workers, SIGHUP reloads
the workers one by one with the app read afresh, SIGTTIN adds a worker and SIGTTOU removes one.

  -h, --help               show this help
  -v, --version            print the version
`;

/** Where the server listens. */
export type Bind = { host: string; port: number } | { path: string } | { fd: number };

export interface Limits {
  maxBodySize?: number | undefined;
  maxRequestTarget?: number | undefined;
  maxHeaderSize?: number | undefined;
  maxHeaderCount?: number | undefined;
  /** Milliseconds. */
  headerTimeout?: number | undefined;
  keepAliveTimeout?: number | undefined;
  requestTimeout?: number | undefined;
  sendTimeout?: number | undefined;
  maxConnections?: number | undefined;
}

export interface ServeArgs {
  spec: string;
  server: string;
  bind: Bind;
  /** The inherited descriptor came from systemd (LISTEN_FDS): the variables are cleared for workers. */
  socketActivated: boolean;
  tls: { key: Buffer; cert: Buffer } | undefined;
  h2c: boolean;
  mount: string;
  accessLog: boolean;
  healthPath: string | undefined;
  /** Peers trusted for X-Forwarded-*: `true` for any. */
  forwardedAllowIps: true | string[];
  proxyProtocol: 'off' | 'v1' | 'v2' | 'auto';
  proxyAllowFrom: string[];
  limits: Limits;
  /** Undefined: one process, no manager. */
  workers: number | undefined;
  /** Milliseconds; 0: off. */
  timeout: number;
  maxRequests: number;
  maxRequestsJitter: number;
  /** Milliseconds. */
  gracefulTimeout: number;
  drainDelay: number;
  reload: boolean;
}

/** One option's value as given: the flag, else its variable, else its default; with where it came from. */
interface Given {
  value: string | undefined;
  source: string;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?$/i;
const UNIT: Readonly<Record<string, number>> = {
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
};

class Reader {
  readonly #values: Record<string, string | boolean | undefined>;
  readonly #env: NodeJS.ProcessEnv;

  constructor(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv) {
    this.#values = values;
    this.#env = env;
  }

  given(flag: string): Given {
    const v = this.#values[flag];
    if (v !== undefined) return { value: String(v), source: `--${flag}` };
    const e = this.#env[envName(flag)];
    if (e !== undefined && e !== '') return { value: e, source: envName(flag) };
    return { value: SPECS.find((o) => o.flag === flag)?.default, source: `--${flag}` };
  }

  /** True when the flag or its variable was set (defaults aside). */
  isSet(flag: string): boolean {
    return this.#values[flag] !== undefined || (this.#env[envName(flag)] ?? '') !== '';
  }

  string(flag: string): string | undefined {
    return this.given(flag).value;
  }

  flag(flag: string): boolean {
    const { value, source } = this.given(flag);
    if (value === undefined) return false;
    if (/^(1|true|yes|on)$/i.test(value)) return true;
    if (/^(0|false|no|off)$/i.test(value)) return false;
    throw new CliError(`${source} is a switch: give 1 or 0 (true or false), got ${JSON.stringify(value)}`, 2);
  }

  int(flag: string, min: number, max: number, what = 'a whole number'): number | undefined {
    const { value, source } = this.given(flag);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new CliError(`${source} must be ${what} from ${min} to ${max}, got ${value}`, 2);
    return n;
  }

  /** Seconds as given, in milliseconds; `positive`: 0 is refused. */
  seconds(flag: string, positive = false): number | undefined {
    const { value, source } = this.given(flag);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (positive && n === 0) || n > 86_400 * 365)
      throw new CliError(
        `${source} must be a number of seconds${positive ? ' above 0' : ''}, e.g. 30 or 0.5; got ${JSON.stringify(value)}`,
        2,
      );
    return Math.round(n * 1000);
  }

  bytes(flag: string): number | undefined {
    const { value, source } = this.given(flag);
    if (value === undefined) return undefined;
    const m = SIZE.exec(value.trim());
    const n = m === null ? NaN : Math.floor(Number(m[1]) * UNIT[(m[2] ?? 'b').toLowerCase()]!);
    if (!(n > 0) || !Number.isSafeInteger(n))
      throw new CliError(
        `${source} must be a size in bytes, e.g. 1048576, 512kb or 10mb; got ${JSON.stringify(value)}`,
        2,
      );
    return n;
  }

  list(flag: string): string[] {
    const v = this.string(flag);
    return v === undefined
      ? []
      : v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  }
}

/** Reads `nsgi serve`'s arguments and environment. `env` is read for NSGI_* and systemd's LISTEN_*. */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeArgs {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const o of SPECS) options[o.flag] = { type: o.boolean ? 'boolean' : 'string' };
  for (const alias of Object.keys(ALIASES)) options[alias] = { type: 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options, strict: true });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  for (const [alias, flag] of Object.entries(ALIASES)) if (values[flag] === undefined) values[flag] = values[alias];
  const positionals = parsed.positionals;
  if (positionals.length > 1)
    throw new CliError(`unexpected arguments: ${positionals.slice(1).join(' ')}\n\n${USAGE}`, 2);
  const spec = positionals[0] ?? env.NSGI_APP;
  if (spec === undefined || spec === '') throw new CliError(`missing the app file (or NSGI_APP)\n\n${USAGE}`, 2);

  const r = new Reader(values, env);
  const server = r.string('server')!;
  if (!['raw', 'node', 'express', 'fastify'].includes(server))
    throw new CliError(
      `${r.given('server').source} must be one of raw, node, express, fastify; got ${JSON.stringify(server)}`,
      2,
    );

  let mount = r.string('mount') ?? '';
  try {
    mount = encodeScriptName(mount, '--mount') === undefined ? '' : mount;
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }

  const { bind, socketActivated } = readBind(r, env);
  const workers = r.isSet('workers') ? r.int('workers', 1, 1024, 'a whole number of processes') : undefined;
  const args: ServeArgs = {
    spec,
    server,
    bind,
    socketActivated,
    tls: readTls(r),
    h2c: r.flag('http2'),
    mount,
    accessLog: !r.flag('no-access-log'),
    healthPath: readHealthPath(r),
    forwardedAllowIps: readForwarded(r),
    proxyProtocol: readProxyMode(r),
    proxyAllowFrom: readProxyAllowFrom(r),
    limits: {
      maxBodySize: r.bytes('max-body-size'),
      maxRequestTarget: r.int('max-request-target', 1, 1_048_576),
      maxHeaderSize: r.bytes('max-header-size'),
      maxHeaderCount: r.int('max-header-count', 1, 100_000),
      headerTimeout: r.seconds('header-timeout', true),
      keepAliveTimeout: r.seconds('keep-alive-timeout', true),
      requestTimeout: r.seconds('request-timeout', true),
      sendTimeout: r.seconds('send-timeout', true),
      maxConnections: r.int('max-connections', 1, 1_000_000),
    },
    workers,
    timeout: r.seconds('timeout')!,
    maxRequests: r.int('max-requests', 0, Number.MAX_SAFE_INTEGER)!,
    maxRequestsJitter: r.int('max-requests-jitter', 0, Number.MAX_SAFE_INTEGER)!,
    gracefulTimeout: r.seconds('graceful-timeout')!,
    drainDelay: r.seconds('drain-delay')!,
    reload: r.flag('reload'),
  };
  checkCombinations(args, r);
  return args;
}

function readBind(r: Reader, env: NodeJS.ProcessEnv): { bind: Bind; socketActivated: boolean } {
  const uds = r.string('uds');
  const fd = r.int('fd', 0, 65_535, 'a file descriptor number');
  const listenFds = Number(env.LISTEN_FDS ?? '0');
  // systemd sets LISTEN_PID to the process it started; a variable inherited by another is not ours.
  const activated = listenFds >= 1 && Number(env.LISTEN_PID) === process.pid;
  const chosen = [uds !== undefined && '--uds', fd !== undefined && '--fd', r.isSet('port') && '--port'].filter(
    Boolean,
  );
  if (chosen.length > 1) throw new CliError(`give one of --port, --uds and --fd, not ${chosen.join(' and ')}`, 2);
  if (r.isSet('host') && (uds !== undefined || fd !== undefined))
    throw new CliError(`--host is for --port; ${uds !== undefined ? '--uds' : '--fd'} listens where its socket is`, 2);
  if (uds !== undefined) return { bind: { path: uds }, socketActivated: false };
  if (fd !== undefined) return { bind: { fd }, socketActivated: activated };
  if (activated && !r.isSet('port') && !r.isSet('host')) return { bind: { fd: 3 }, socketActivated: true };
  const port = r.int('port', 0, 65_535)!;
  return { bind: { host: r.string('host')!, port }, socketActivated: false };
}

/** The PEM files of --key and --cert, read once at start; both or neither. */
function readTls(r: Reader): ServeArgs['tls'] {
  const keyFile = r.string('key');
  const certFile = r.string('cert');
  if (keyFile === undefined && certFile === undefined) return undefined;
  if (keyFile === undefined || certFile === undefined)
    throw new CliError(
      `TLS needs both --key and --cert (PEM files); ${keyFile === undefined ? '--key' : '--cert'} is missing`,
      2,
    );
  const read = (flag: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CliError(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 2);
    }
  };
  return { key: read('--key', keyFile), cert: read('--cert', certFile) };
}

function readHealthPath(r: Reader): string | undefined {
  const { value, source } = r.given('health-path');
  if (value === undefined) return undefined;
  if (!/^\/[\x21-\x7e]*$/.test(value) || value.includes('?') || value.includes('#'))
    throw new CliError(`${source} must be a path starting with /, e.g. /healthz; got ${JSON.stringify(value)}`, 2);
  return value;
}

function readForwarded(r: Reader): true | string[] {
  const list = r.list('forwarded-allow-ips');
  if (list.includes('*')) return true;
  checkAddresses(r, 'forwarded-allow-ips', list);
  return list;
}

/** Refuses a list proxy-addr cannot read, naming the flag. */
function checkAddresses(r: Reader, flag: string, list: string[]): void {
  try {
    proxyaddr.compile(list);
  } catch (err) {
    throw new CliError(
      `${r.given(flag).source}: ${(err as Error).message}; give addresses and CIDR ranges separated by commas, or 'loopback'`,
      2,
    );
  }
}

function readProxyAllowFrom(r: Reader): string[] {
  const list = r.list('proxy-allow-from');
  checkAddresses(r, 'proxy-allow-from', list);
  return list;
}

function readProxyMode(r: Reader): ServeArgs['proxyProtocol'] {
  const { value, source } = r.given('proxy-protocol');
  if (value === 'off' || value === 'v1' || value === 'v2' || value === 'auto') return value;
  throw new CliError(`${source} must be off, v1, v2 or auto; got ${JSON.stringify(value)}`, 2);
}

/** Options a server cannot honour, or that need another, refused with the fix. */
function checkCombinations(a: ServeArgs, r: Reader): void {
  const rawOnly: Array<[string, boolean]> = [
    ['proxy-protocol', a.proxyProtocol !== 'off'],
    ['send-timeout', a.limits.sendTimeout !== undefined],
  ];
  for (const [flag, used] of rawOnly) {
    if (used && a.server !== 'raw')
      throw new CliError(
        `--${flag} is an option of --server raw (the bundled server); ${a.server} has no such setting`,
        2,
      );
  }
  // node:http2 takes none of these: they would be ignored there.
  const h2 = a.server !== 'raw' && a.server !== 'express' && (a.tls !== undefined || a.h2c);
  const h1Only = (
    ['maxHeaderSize', 'headerTimeout', 'keepAliveTimeout', 'requestTimeout', 'maxHeaderCount'] as const
  ).filter((k) => a.limits[k] !== undefined);
  if (h2 && h1Only.length > 0 && (a.server === 'fastify' || a.h2c))
    throw new CliError(
      `--${h1Only[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is not applied to HTTP/2 on --server ${a.server}; ` +
        'use --server raw (or node with TLS, where it applies to the HTTP/1.1 connections)',
      2,
    );
  if (a.proxyProtocol !== 'off' && a.tls !== undefined)
    throw new CliError(
      '--proxy-protocol is read on plain TCP only: terminate TLS at the proxy, which then sends the header',
      2,
    );
  if (r.isSet('proxy-allow-from') && a.proxyProtocol === 'off')
    throw new CliError('--proxy-allow-from needs --proxy-protocol v1, v2 or auto', 2);
  if (a.workers === undefined) {
    for (const flag of ['timeout', 'max-requests', 'max-requests-jitter']) {
      if (r.isSet(flag))
        throw new CliError(`--${flag} needs --workers <n>: a process manager replaces the workers it stops`, 2);
    }
  }
  if (a.reload && a.workers !== undefined)
    throw new CliError(
      '--reload is for development and restarts one process: leave out --workers (use SIGHUP to reload workers)',
      2,
    );
}
