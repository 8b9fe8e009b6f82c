/**
 * The bundled HTTP/1.1 server: `serve(app, options)` listens on TCP (plain or TLS) or a unix socket
 * and serves the app through the gateway core, with its own strict parser.
 */

import net, { type AddressInfo } from 'node:net';
import proxyaddr from 'proxy-addr';
import tls from 'node:tls';
import { DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_REQUEST_TARGET } from '../environ.js';
import { Gateway, type GatewayOptions } from '../gateway.js';
import { encodeScriptName } from '../script-name.js';
import type { AppLike } from '../types.js';
import { ALPN_H2_H1, H2Host } from '../http2.js';
import { Connection, type ConnectionContext, type ProxyPolicy } from './connection.js';
import { DEFAULT_PARSER_LIMITS, type ParserLimits } from './parser.js';

export interface ServeOptions extends GatewayOptions {
  /** Address to listen on. Default `'127.0.0.1'`; `'0.0.0.0'` or `'::'` for every interface. */
  host?: string | undefined;
  /** TCP port. Default 8080; 0 picks a free one (read it from `address()`). */
  port?: number | undefined;
  /** A unix socket path to listen on instead of host/port. */
  path?: string | undefined;
  /** An inherited listening socket's file descriptor (systemd socket activation) instead of host/port. */
  fd?: number | undefined;
  /** PEM private key and certificate: when both are given the server speaks TLS (`wsgi.url_scheme` https). */
  key?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  /** Further TLS options (ca, passphrase, ciphers, ALPN...) for `tls.createServer`. */
  tls?: tls.TlsOptions | undefined;
  /**
   * With TLS, offer HTTP/2 by ALPN (SPEC §17): connections that pick `h2` are served by node:http2
   * through the same core, the rest by the bundled HTTP/1.1 parser. Default true with TLS; `true`
   * without key and cert is refused (no h2c here); off when `tls.ALPNProtocols` is given.
   */
  http2?: boolean | undefined;
  /** URL path prefix the app is mounted at (SCRIPT_NAME); requests outside it get 404. Default `''`. */
  scriptName?: string | undefined;
  /** Largest header section in bytes, request line included (431 above). Default 16 KiB. */
  maxHeaderSize?: number | undefined;
  /** Most header fields per request (431 above). Default 128. */
  maxHeaderCount?: number | undefined;
  /** Longest chunk extension run on one chunk line (413 above). Default 1 KiB. */
  maxChunkExtension?: number | undefined;
  /** Time for a request head to arrive, from its first byte or the connection's start (slowloris). Default 10 s. */
  headerTimeout?: number | undefined;
  /** Time a keep-alive connection may sit idle between requests. Default 5 s. */
  keepAliveTimeout?: number | undefined;
  /** Time for a request body to arrive once its head is in (408 after). Default 300 s. */
  requestTimeout?: number | undefined;
  /** Time a client may leave a response unread while the server waits to write more; then it is cut off. Default 60 s. */
  sendTimeout?: number | undefined;
  /** Connections served at once; further ones are closed on arrival. Default 10 000. */
  maxConnections?: number | undefined;
  /** On close(), how long requests in progress may take before they are aborted. Default 10 s. */
  shutdownGrace?: number | undefined;
  /** listen() backlog. */
  backlog?: number | undefined;
  /**
   * PROXY protocol (SPEC §18): connections from `proxyAllowFrom` begin with a v1 or v2 header (or,
   * with 'auto', either or none) naming the client. Default 'off'. Plain TCP only.
   */
  proxyProtocol?: 'off' | 'v1' | 'v2' | 'auto' | undefined;
  /** Who may send a PROXY header: addresses, CIDR ranges, 'loopback', 'linklocal', 'uniquelocal'. Default 'loopback'. */
  proxyAllowFrom?: string | readonly string[] | undefined;
}

export interface NsgiServer {
  /** Where the server listens: host, port and family, or the unix socket path. */
  address(): AddressInfo | string;
  /** The URL to reach the server at (`http://127.0.0.1:8080`, or the socket path). */
  readonly url: string;
  /** Connections currently open (HTTP/2 sessions included). */
  readonly connections: number;
  /**
   * Stops accepting, closes idle connections, lets requests in progress finish (their responses
   * close the connection), and after `grace` ms aborts the rest (their `nsgi.signal` fires).
   * Open WebSockets get close code 1001 and the same grace.
   * Resolves once every connection is gone. Calling it again returns the same promise.
   */
  close(grace?: number): Promise<void>;
  /** The underlying net.Server (or tls.Server). */
  readonly server: net.Server;
  readonly gateway: Gateway;
}

function positive(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!(typeof v === 'number' && v > 0)) throw new RangeError(`${name} must be a number > 0, got ${String(v)}`);
  return v;
}

class ServerContext implements ConnectionContext {
  readonly gateway: Gateway;
  readonly limits: ParserLimits;
  readonly scriptName: string | undefined;
  readonly headerTimeout: number;
  readonly keepAliveTimeout: number;
  readonly requestTimeout: number;
  readonly sendTimeout: number;
  now = Date.now();
  closing = false;
  /** The shutdown grace is over: what is left is dropped, and new connections with it. */
  dropping = false;
  readonly conns = new Set<Connection>();
  /** Every TCP connection of a TLS server, from its first byte: at the grace, those left (a handshake that never ended) are dropped. */
  readonly tcpSockets = new Set<net.Socket>();
  onEmpty: (() => void) | undefined = undefined;
  readonly proxy: ProxyPolicy | undefined;

  constructor(gateway: Gateway, options: ServeOptions) {
    this.gateway = gateway;
    this.proxy = proxyPolicy(options);
    this.limits = {
      maxRequestTarget: options.maxRequestTarget ?? DEFAULT_MAX_REQUEST_TARGET,
      maxBodySize: options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE,
      maxHeaderSize: positive('maxHeaderSize', options.maxHeaderSize, DEFAULT_PARSER_LIMITS.maxHeaderSize),
      maxHeaderCount: positive('maxHeaderCount', options.maxHeaderCount, DEFAULT_PARSER_LIMITS.maxHeaderCount),
      maxChunkExtension: positive(
        'maxChunkExtension',
        options.maxChunkExtension,
        DEFAULT_PARSER_LIMITS.maxChunkExtension,
      ),
    };
    this.scriptName = encodeScriptName(options.scriptName);
    this.headerTimeout = positive('headerTimeout', options.headerTimeout, 10_000);
    this.keepAliveTimeout = positive('keepAliveTimeout', options.keepAliveTimeout, 5_000);
    this.requestTimeout = positive('requestTimeout', options.requestTimeout, 300_000);
    this.sendTimeout = positive('sendTimeout', options.sendTimeout, 60_000);
  }

  forget(conn: Connection): void {
    this.conns.delete(conn);
    if (this.conns.size === 0) this.onEmpty?.();
  }

  /** Advances the clock and applies every connection's deadline. */
  tick(): void {
    const now = (this.now = Date.now());
    for (const conn of this.conns) conn.checkDeadline(now);
  }
}

const PROXY_MODES = ['off', 'v1', 'v2', 'auto'];

function proxyPolicy(options: ServeOptions): ProxyPolicy | undefined {
  const mode = options.proxyProtocol ?? 'off';
  if (!PROXY_MODES.includes(mode))
    throw new RangeError(`proxyProtocol must be 'off', 'v1', 'v2' or 'auto', got ${JSON.stringify(mode)}`);
  if (mode === 'off') {
    if (options.proxyAllowFrom !== undefined)
      throw new TypeError("proxyAllowFrom needs proxyProtocol 'v1', 'v2' or 'auto'");
    return undefined;
  }
  if (options.key !== undefined || options.cert !== undefined) {
    throw new TypeError(
      'proxyProtocol is read on plain TCP only: terminate TLS at the proxy (it then sends the header), ' +
        'or leave proxyProtocol off',
    );
  }
  const from: unknown = options.proxyAllowFrom ?? 'loopback';
  if (typeof from !== 'string' && !Array.isArray(from))
    throw new RangeError(`proxyAllowFrom takes addresses and CIDR ranges (a string or an array), got ${typeof from}`);
  const list = typeof from === 'string' ? from.split(',').map((s) => s.trim()) : (from as string[]);
  let allows: (address: string, i: number) => boolean;
  try {
    allows = proxyaddr.compile(list);
  } catch (err) {
    throw new RangeError(
      `proxyAllowFrom: ${(err as Error).message}; give IP addresses, CIDR ranges, 'loopback', 'linklocal' or 'uniquelocal'`,
      { cause: err },
    );
  }
  return { mode, allows: (address) => allows(address, 0) };
}

/** A server built but not listening, with what serve() needs to run and stop it. */
interface RawServer {
  server: net.Server;
  ctx: ServerContext;
  secure: boolean;
  gateway: Gateway;
  /** The HTTP/2 side, on a TLS server that offers `h2`. */
  h2: H2Host | undefined;
}

function build(app: AppLike, options: ServeOptions): RawServer {
  const gateway = new Gateway(app, options);
  const ctx = new ServerContext(gateway, options);
  const secure = options.key !== undefined || options.cert !== undefined;
  if (secure && (options.key === undefined || options.cert === undefined)) {
    throw new TypeError('TLS needs both key and cert (PEM); give both, or neither for plain HTTP');
  }
  const maxConnections = positive('maxConnections', options.maxConnections, 10_000);
  if (options.http2 === true && !secure) {
    throw new TypeError(
      'http2: true needs key and cert: the bundled server offers HTTP/2 by ALPN over TLS; ' +
        'for HTTP/2 without TLS (h2c) use createNodeServer(app, { http2: true })',
    );
  }
  const offersH2 = secure && options.http2 !== false && options.tls?.ALPNProtocols === undefined;
  const h2 = offersH2 ? new H2Host(gateway, ctx.scriptName, ctx.keepAliveTimeout) : undefined;
  const accept = (socket: net.Socket) => {
    // A connection that arrives while the server closes (node:cluster hands a worker connections
    // its manager accepted before the worker stopped listening) is still served: its response
    // closes it. Past the grace it is dropped.
    if (ctx.dropping) {
      socket.destroy();
      return;
    }
    if (h2 !== undefined && (socket as tls.TLSSocket).alpnProtocol === 'h2') {
      if (ctx.closing) socket.destroy();
      else h2.accept(socket);
      return;
    }
    ctx.conns.add(new Connection(ctx, socket, secure));
  };
  let server: net.Server;
  if (secure) {
    const alpn = offersH2 ? { ALPNProtocols: ALPN_H2_H1 } : {};
    server = tls.createServer(
      { ...options.tls, ...alpn, key: options.key, cert: options.cert, allowHalfOpen: true },
      accept,
    );
    server.on('tlsClientError', () => {}); // a failed handshake is the client's problem, not a server error
    // Connections still in their handshake have no Connection yet: close(grace) drops them at the grace.
    server.on('connection', (socket: net.Socket) => {
      ctx.tcpSockets.add(socket);
      socket.once('close', () => ctx.tcpSockets.delete(socket));
    });
  } else {
    server = net.createServer({ allowHalfOpen: true }, accept);
  }
  server.maxConnections = maxConnections;
  // One timer for every deadline of every connection, instead of a timer per request.
  const step = Math.max(
    50,
    Math.min(1000, Math.min(ctx.headerTimeout, ctx.keepAliveTimeout, ctx.requestTimeout, ctx.sendTimeout) / 4),
  );
  let ticker: NodeJS.Timeout | undefined;
  server.on('listening', () => {
    clearInterval(ticker);
    ticker = setInterval(() => ctx.tick(), step).unref();
  });
  server.on('close', () => clearInterval(ticker));
  return { server, ctx, secure, gateway, h2 };
}

/**
 * The raw server as a plain net.Server (tls.Server with key/cert), not yet listening: for code that
 * manages listening itself, as with `http.createServer`. Host, port and path options are ignored;
 * `server.close()` stops accepting and leaves open connections to their timeouts.
 */
export function createServer(app: AppLike, options: ServeOptions = {}): net.Server {
  return build(app, options).server;
}

/** Starts the server; resolves once it listens. */
export async function serve(app: AppLike, options: ServeOptions = {}): Promise<NsgiServer> {
  const { server, ctx, secure, gateway, h2 } = build(app, options);
  const shutdownGrace = options.shutdownGrace ?? 10_000;
  if (!(shutdownGrace >= 0))
    throw new RangeError(`shutdownGrace must be a number >= 0, got ${String(options.shutdownGrace)}`);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (options.path !== undefined) server.listen({ path: options.path, backlog: options.backlog }, done);
    else if (options.fd !== undefined) server.listen({ fd: options.fd, backlog: options.backlog }, done);
    else
      server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8080, backlog: options.backlog }, done);
  });
  server.on('error', (err) => process.stderr.write(`nsgi: server error: ${String(err)}\n`));

  let closing: Promise<void> | undefined;
  const address = () => server.address() as AddressInfo | string;
  const handle: NsgiServer = {
    address,
    get url() {
      const a = address();
      if (typeof a === 'string') return a;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      return `${secure ? 'https' : 'http'}://${host}:${a.port}`;
    },
    get connections() {
      return ctx.conns.size + (h2?.sessions ?? 0);
    },
    server,
    gateway,
    close(grace = shutdownGrace) {
      closing ??= new Promise<void>((resolve) => {
        ctx.closing = true;
        gateway.drain();
        let serverClosed = false;
        let socketsClosed = false;
        // eslint-disable-next-line prefer-const -- finish() may run (and clear it) before it is set
        let force: NodeJS.Timeout | undefined;
        const finish = () => {
          if (!serverClosed || !socketsClosed || ctx.conns.size > 0 || (h2?.sessions ?? 0) > 0) return;
          clearTimeout(force);
          resolve();
        };
        // WebSockets get close code 1001 and the same grace (SPEC §16.4).
        void gateway.closeWebSockets(grace).then(() => {
          socketsClosed = true;
          finish();
        });
        ctx.onEmpty = finish;
        if (h2 !== undefined) h2.onEmpty = finish;
        server.close(() => {
          serverClosed = true;
          finish();
        });
        // The clock is coarse (advanced by the ticker): the short drain deadlines need it exact.
        ctx.now = Date.now();
        for (const conn of [...ctx.conns]) conn.shutdown();
        h2?.close();
        force = setTimeout(() => {
          ctx.dropping = true;
          for (const conn of [...ctx.conns]) conn.forceClose();
          h2?.destroy();
          for (const socket of ctx.tcpSockets) socket.destroy();
        }, grace).unref();
      });
      return closing;
    },
  };
  return handle;
}
