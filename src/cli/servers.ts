/** The hosts `nsgi serve --server` can start, each behind the same small interface. */

import { performance } from 'node:perf_hooks';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { GatewayOptions } from '../gateway.js';
import type { AppLike } from '../types.js';
import { CliError } from './load.js';

export interface StartOptions extends GatewayOptions {
  host: string;
  port: number;
  /** Mount prefix ('' for the root). */
  mount: string;
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
function listenError(err: NodeJS.ErrnoException, options: StartOptions): CliError {
  if (err.code === 'EADDRINUSE')
    return new CliError(`${options.host}:${options.port} is already in use; pick another port with --port`);
  if (err.code === 'EACCES')
    return new CliError(`no permission to listen on ${options.host}:${options.port}; use a port above 1023`);
  return new CliError(`cannot listen on ${options.host}:${options.port}: ${err.message}`);
}

/** The protocols a node-based server speaks, for the startup line. */
function protocolsOf(options: StartOptions, h2: boolean): string {
  if (options.tls !== undefined) return h2 ? 'HTTP/2 and HTTP/1.1 over TLS, by ALPN' : 'HTTP/1.1 over TLS';
  return options.h2c === true && h2 ? 'HTTP/2 without TLS (h2c, prior knowledge)' : 'HTTP/1.1';
}

/** Refuses --http2 without TLS on a server that has no h2c. */
function noH2c(name: string, options: StartOptions): void {
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
  // Every connection, whatever the server's kind (node:http, TLS with ALPN, h2c), to drop on force.
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  const closeIdle = () => (server as Partial<http.Server>).closeIdleConnections?.();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, options)));
    server.listen(options.port, options.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `${options.tls !== undefined ? 'https' : 'http'}://${host}:${addr.port}`,
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

const startNode: ServerStarter = async (app, { tls, h2c, ...options }) => {
  const { createNodeServer } = await import('../../adapters/node.js');
  // With TLS, HTTP/2 by ALPN beside HTTP/1.1; without, h2c only when asked for.
  const http2 = tls !== undefined || h2c === true;
  const server = createNodeServer(app, { ...options, ...tls, scriptName: options.mount, http2 });
  return run(server, { ...options, tls, h2c }, protocolsOf({ ...options, tls, h2c }, http2), (grace) =>
    server.gateway.closeWebSockets(grace),
  );
};

const startExpress: ServerStarter = async (app, { tls, ...options }) => {
  noH2c('express', options);
  const { default: express } = await peer('express', () => import('express'));
  const { expressUpgrade, toExpress } = await import('../../adapters/express.js');
  const web = express();
  const middleware = toExpress(app, options);
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
  const server = tls !== undefined ? https.createServer(tls, web) : http.createServer(web);
  // 100 Continue on the app's first read of wsgi.input, as with --server node.
  server.on('checkContinue', web);
  server.on('upgrade', expressUpgrade(web));
  return run(server, { ...options, tls }, protocolsOf({ ...options, tls }, false), (grace) =>
    middleware.gateway.closeWebSockets(grace),
  );
};

const startFastify: ServerStarter = async (app, { tls, h2c, ...options }) => {
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
        : {};
  // Errors an app writes to wsgi.errors go to Fastify's logger (JSON lines on stdout).
  // One instance type for the three server kinds: the plugin and the hooks below use no h2-specific API.
  const create = Fastify as unknown as (options: object) => FastifyInstance;
  const fastify = create({ ...server, frameworkErrors: nsgiFrameworkErrors, logger: { level: 'error' } });
  await fastify.register(nsgiPlugin, { ...options, app, prefix: options.mount });
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
  return run(fastify.server, { ...options, tls, h2c }, protocolsOf({ ...options, tls, h2c }, http2), () =>
    fastify.close(),
  );
};

const startRaw: ServerStarter = async (app, { tls, ...options }) => {
  noH2c('raw', options);
  const { serve } = await import('../server/serve.js');
  let server;
  try {
    server = await serve(app, { ...options, ...tls, scriptName: options.mount });
  } catch (err) {
    throw listenError(err as NodeJS.ErrnoException, options);
  }
  return {
    url: server.url,
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
