/** The hosts `nsgi serve --server` can start, each behind the same small interface. */

import { performance } from 'node:perf_hooks';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { GatewayOptions } from '../gateway.js';
import type { AppLike } from '../types.js';
import { CliError } from './load.js';
import { drainLikeBundledServer } from './node-drain.js';
import type { Bind, Limits } from './options.js';

export interface StartOptions extends GatewayOptions {
  bind: Bind;
  /** Mount prefix ('' for the root). */
  mount: string;
  /** Server limits and timeouts (ms) beyond the gateway's own (maxBodySize, maxRequestTarget). */
  limits: Limits;
  /** PROXY protocol, on the raw server. */
  proxyProtocol: 'off' | 'v1' | 'v2' | 'auto';
  proxyAllowFrom: string[];
  /** PEM key and certificate: TLS, and HTTP/2 by ALPN where the server carries it. */
  tls?: { key: Buffer; cert: Buffer } | undefined;
  /** HTTP/2 without TLS (h2c, prior knowledge), where the server carries it. */
  h2c?: boolean | undefined;
}

export interface RunningServer {
  /** Where it listens, e.g. http://127.0.0.1:8080. */
  url: string;
  /** What it speaks, for the startup line: 'HTTP/1.1', 'HTTP/2 and HTTP/1.1 (ALPN)', 'h2c'. */
  protocols: string;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then drops what is left. */
  close(graceMs: number): Promise<void>;
  /** Drops every connection now. */
  forceClose(): void;
}

export type ServerStarter = (app: AppLike, options: StartOptions) => Promise<RunningServer>;

/** The error of a failed listen, saying what to change. */
function listenError(err: NodeJS.ErrnoException, bind: Bind): CliError {
  if ('path' in bind) {
    if (err.code === 'EADDRINUSE')
      return new CliError(
        `${bind.path} is in use (or left from a server that stopped): remove it, or pick another --uds path`,
      );
    return new CliError(`cannot listen on the unix socket ${bind.path}: ${err.message}`);
  }
  if ('fd' in bind)
    return new CliError(
      `cannot listen on file descriptor ${bind.fd} (${err.message}); is it an inherited listening socket?`,
    );
  const where = `${bind.host}:${bind.port}`;
  if (err.code === 'EADDRINUSE') return new CliError(`${where} is already in use; pick another port with --port`);
  if (err.code === 'EACCES') return new CliError(`no permission to listen on ${where}; use a port above 1023`);
  return new CliError(`cannot listen on ${where}: ${err.message}`);
}

/** listen() arguments for a bind. */
function listenOptions(bind: Bind): net.ListenOptions | { fd: number } {
  if ('path' in bind) return { path: bind.path };
  if ('fd' in bind) return { fd: bind.fd };
  return { host: bind.host, port: bind.port };
}

/** The URL a listening server is reached at (a unix socket's path as given). */
function urlOf(address: AddressInfo | string | null, secure: boolean): string {
  if (typeof address === 'string') return `unix:${address}`;
  if (address === null) return 'unknown';
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${secure ? 'https' : 'http'}://${host}:${address.port}`;
}

/** node:http's defaults, for the checks below. */
const NODE_REQUEST_TIMEOUT = 300_000;

/**
 * The node:http side of the limits, set where node:http takes them: at creation (http.createServer's
 * options; the HTTP/1.1 connections of an HTTP/2 server included). node:http checks its timeouts on
 * an interval (30 s by default), which is shortened so that a short timeout holds.
 */
function nodeHttpOptions(limits: Limits): http.ServerOptions {
  const o: http.ServerOptions = {};
  if (limits.maxHeaderSize !== undefined) o.maxHeaderSize = limits.maxHeaderSize;
  if (limits.keepAliveTimeout !== undefined) o.keepAliveTimeout = limits.keepAliveTimeout;
  if (limits.headerTimeout !== undefined || limits.requestTimeout !== undefined) {
    // node:http's requestTimeout covers the whole request, and may not be shorter than headersTimeout.
    const request = Math.max(limits.requestTimeout ?? NODE_REQUEST_TIMEOUT, limits.headerTimeout ?? 0);
    o.requestTimeout = request;
    if (limits.headerTimeout !== undefined) o.headersTimeout = limits.headerTimeout;
    const shortest = Math.min(limits.headerTimeout ?? request, request);
    o.connectionsCheckingInterval = Math.max(100, Math.min(30_000, shortest / 4));
  }
  return o;
}

/** The limits node:http takes after creation. */
function applyNodeLimits(server: net.Server, limits: Limits): void {
  if (limits.maxConnections !== undefined) server.maxConnections = limits.maxConnections;
  if (limits.maxHeaderCount !== undefined && server instanceof http.Server)
    server.maxHeadersCount = limits.maxHeaderCount;
}

/** The protocols a node-based server speaks, for the startup line. */
function protocolsOf(options: Pick<StartOptions, 'tls' | 'h2c'>, h2: boolean): string {
  if (options.tls !== undefined) return h2 ? 'HTTP/2 and HTTP/1.1 over TLS, by ALPN' : 'HTTP/1.1 over TLS';
  return options.h2c === true && h2 ? 'HTTP/2 without TLS (h2c, prior knowledge)' : 'HTTP/1.1';
}

/** Refuses --http2 without TLS on a server that has no h2c. */
function noH2c(name: string, options: Pick<StartOptions, 'tls' | 'h2c'>): void {
  if (options.h2c === true && options.tls === undefined)
    throw new CliError(
      `--server ${name} has no HTTP/2 without TLS; give --key and --cert for HTTP/2 by ALPN, or use --server node --http2 for h2c`,
      2,
    );
}

/** Listens on the host and port, with errors that say what to change, and wraps the server for the CLI. */
async function run(
  server: net.Server,
  options: StartOptions,
  protocols: string,
  closeWebSockets: (graceMs: number) => Promise<void>,
): Promise<RunningServer> {
  applyNodeLimits(server, options.limits);
  // Every connection, whatever the server's kind (node:http, TLS with ALPN, h2c), to drop on force.
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  const closeIdle =
    server instanceof http.Server || server instanceof https.Server
      ? drainLikeBundledServer(server as http.Server)
      : () => (server as Partial<http.Server>).closeIdleConnections?.();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, options.bind)));
    server.listen(listenOptions(options.bind), () => resolve());
  });
  return {
    url: urlOf(server.address(), options.tls !== undefined),
    protocols,
    forceClose: dropAll,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        // WebSockets get close code 1001 and the same grace; node:http's close() does not see them.
        const closing = closeWebSockets(graceMs);
        const timer = setTimeout(dropAll, graceMs).unref();
        // Keep-alive connections that go idle while in-flight requests finish are closed as they do.
        const sweep = setInterval(closeIdle, 50).unref();
        server.close(() => {
          clearTimeout(timer);
          clearInterval(sweep);
          void closing.then(resolve);
        });
        closeIdle();
      }),
  };
}

/** The gateway's options out of the CLI's: the server's own (bind, limits, PROXY) left out. */
function gatewayOptions(o: StartOptions): GatewayOptions {
  const { bind: _b, mount: _m, limits, proxyProtocol: _p, proxyAllowFrom: _a, tls: _t, h2c: _h, ...gateway } = o;
  return { ...gateway, maxBodySize: limits.maxBodySize, maxRequestTarget: limits.maxRequestTarget };
}

/** Imports a host framework the user installs alongside nsgi, or says how to install it. */
async function peer<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' &&
      String((err as Error).message).includes(`'${name}'`)
    ) {
      throw new CliError(`--server ${name} needs the ${name} package: npm install ${name}`, 2);
    }
    throw err;
  }
}

const startNode: ServerStarter = async (app, options) => {
  const { tls, h2c } = options;
  const { createNodeServer } = await import('../../adapters/node.js');
  // With TLS, HTTP/2 by ALPN beside HTTP/1.1; without, h2c only when asked for.
  const http2 = tls !== undefined || h2c === true;
  const server = createNodeServer(app, {
    ...gatewayOptions(options),
    ...tls,
    scriptName: options.mount,
    http2,
    http: nodeHttpOptions(options.limits),
  });
  return run(server, options, protocolsOf(options, http2), (grace) => server.gateway.closeWebSockets(grace));
};

const startExpress: ServerStarter = async (app, options) => {
  const { tls } = options;
  noH2c('express', options);
  const { default: express } = await peer('express', () => import('express'));
  const { expressUpgrade, toExpress } = await import('../../adapters/express.js');
  const web = express();
  const middleware = toExpress(app, gatewayOptions(options));
  // The health path is the gateway's (SPEC §11.1), outside the mount too.
  if (options.healthPath !== undefined) web.all(options.healthPath, middleware);
  web.use(options.mount || '/', middleware);
  // Outside the mount: the same plain 404 and access-log line as --server node gives.
  web.use((req: http.IncomingMessage, res: http.ServerResponse) => {
    const start = performance.now();
    const body = 'Not Found\n';
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length });
    res.end(body);
    options.onResponse?.({
      environ: undefined,
      method: req.method ?? 'GET',
      target: (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/',
      httpVersion: req.httpVersion,
      remoteAddress: req.socket.remoteAddress,
      status: 404,
      bytes: body.length,
      durationMs: performance.now() - start,
      aborted: false,
    });
  });
  // Express runs on node:http only: with TLS it is https, HTTP/1.1 (Express cannot use HTTP/2's objects).
  const httpOptions = nodeHttpOptions(options.limits);
  const server =
    tls !== undefined ? https.createServer({ ...httpOptions, ...tls }, web) : http.createServer(httpOptions, web);
  // 100 Continue on the app's first read of wsgi.input, as with --server node.
  server.on('checkContinue', web);
  server.on('upgrade', expressUpgrade(web));
  return run(server, options, protocolsOf(options, false), (grace) => middleware.gateway.closeWebSockets(grace));
};

const startFastify: ServerStarter = async (app, options) => {
  const { tls, h2c } = options;
  const gateway = gatewayOptions(options);
  // Fastify's own bodyLimit stands unless --max-body-size is given.
  if (gateway.maxBodySize === undefined) delete gateway.maxBodySize;
  const { default: Fastify } = await peer('fastify', () => import('fastify'));
  type FastifyInstance = import('fastify').FastifyInstance;
  const { nsgiFrameworkErrors, nsgiPlugin } = await import('../../adapters/fastify.js');
  // With TLS, HTTP/2 by ALPN beside HTTP/1.1; without, h2c only when asked for.
  const http2 = tls !== undefined || h2c === true;
  const server =
    tls !== undefined
      ? { http2: true as const, https: { ...tls, allowHTTP1: true } }
      : http2
        ? { http2: true as const }
        : { http: nodeHttpOptions(options.limits) };
  // Errors an app writes to wsgi.errors go to Fastify's logger (JSON lines on stdout).
  // One instance type for the three server kinds: the plugin and the hooks below use no h2-specific API.
  const create = Fastify as unknown as (options: object) => FastifyInstance;
  // return503OnClosing off: a request that reaches a closing server is answered, as on every --server
  // (a rolling reload's old worker still gets the requests node:cluster handed it before it closed).
  const fastify = create({
    ...server,
    frameworkErrors: nsgiFrameworkErrors,
    logger: { level: 'error' },
    return503OnClosing: false,
  });
  await fastify.register(nsgiPlugin, { ...gateway, app, prefix: options.mount });
  // The health path is the gateway's (SPEC §11.1), outside the mount too: one more registration there.
  if (options.healthPath !== undefined && options.healthPath !== options.mount)
    await fastify.register(nsgiPlugin, { ...gateway, app: notFound, prefix: options.healthPath });
  // Outside the mount: the same plain 404 and access-log line as --server node gives.
  fastify.setNotFoundHandler((request, reply) => {
    const start = performance.now();
    void reply.code(404).type('text/plain; charset=utf-8').send('Not Found\n');
    options.onResponse?.({
      environ: undefined,
      method: request.method,
      target: request.originalUrl,
      httpVersion: request.raw.httpVersion,
      remoteAddress: request.socket.remoteAddress,
      status: 404,
      bytes: 10,
      durationMs: performance.now() - start,
      aborted: false,
    });
  });
  await fastify.ready();
  // fastify.close() runs the plugin's preClose hook, which gives open WebSockets their 1001.
  return run(fastify.server, options, protocolsOf(options, http2), () => fastify.close());
};

/** What the health path's own registration serves below it. */
function notFound(_environ: unknown, startResponse: (status: string, headers: Array<[string, string]>) => void) {
  startResponse('404 Not Found', [['Content-Type', 'text/plain; charset=utf-8']]);
  return [Buffer.from('Not Found\n')];
}

const startRaw: ServerStarter = async (
  app,
  { tls, bind, limits, mount, proxyProtocol, proxyAllowFrom, ...options },
) => {
  noH2c('raw', options);
  const { serve } = await import('../server/serve.js');
  let server;
  try {
    server = await serve(app, {
      ...options,
      ...tls,
      ...limits,
      ...('path' in bind ? { path: bind.path } : 'fd' in bind ? { fd: bind.fd } : { host: bind.host, port: bind.port }),
      scriptName: mount,
      proxyProtocol,
      proxyAllowFrom: proxyProtocol === 'off' ? undefined : proxyAllowFrom,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw new CliError((err as Error).message, 2);
    throw listenError(err as NodeJS.ErrnoException, bind);
  }
  return {
    url: urlOf(server.address(), tls !== undefined),
    protocols: protocolsOf({ ...options, tls }, true),
    close: (graceMs) => server.close(graceMs), // WebSockets included
    forceClose: () => void server.close(0),
  };
};

export const SERVERS: Readonly<Record<string, ServerStarter>> = {
  raw: startRaw,
  node: startNode,
  express: startExpress,
  fastify: startFastify,
};
