/** The hosts `nsgi serve --server` can start, each behind the same small interface. */

import { performance } from 'node:perf_hooks';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayOptions } from '../gateway.js';
import type { AppLike } from '../types.js';
import { CliError } from './load.js';

export interface StartOptions extends GatewayOptions {
  host: string;
  port: number;
  /** Mount prefix ('' for the root). */
  mount: string;
}

export interface RunningServer {
  /** Where it listens, e.g. http://127.0.0.1:8080. */
  url: string;
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

/** Listens on the host and port, with errors that say what to change, and wraps the server for the CLI. */
async function run(
  server: http.Server,
  options: StartOptions,
  closeWebSockets: (graceMs: number) => Promise<void>,
): Promise<RunningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, options)));
    server.listen(options.port, options.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    forceClose: () => server.closeAllConnections(),
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        // WebSockets get close code 1001 and the same grace; node:http's close() does not see them.
        const sockets = closeWebSockets(graceMs);
        const timer = setTimeout(() => server.closeAllConnections(), graceMs).unref();
        // Keep-alive connections that go idle while in-flight requests finish are closed as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 50).unref();
        server.close(() => {
          clearTimeout(timer);
          clearInterval(sweep);
          void sockets.then(resolve);
        });
        server.closeIdleConnections();
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

const startNode: ServerStarter = async (app, options) => {
  const { toNodeListener } = await import('../../adapters/node.js');
  const listener = toNodeListener(app, { ...options, scriptName: options.mount });
  const server = http.createServer(listener);
  server.on('checkContinue', listener.checkContinue);
  server.on('upgrade', listener.upgrade);
  return run(server, options, (grace) => listener.gateway.closeWebSockets(grace));
};

const startExpress: ServerStarter = async (app, options) => {
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
  const server = http.createServer(web);
  // 100 Continue on the app's first read of wsgi.input, as with --server node.
  server.on('checkContinue', web);
  server.on('upgrade', expressUpgrade(web));
  return run(server, options, (grace) => middleware.gateway.closeWebSockets(grace));
};

const startFastify: ServerStarter = async (app, options) => {
  const { default: Fastify } = await peer('fastify', () => import('fastify'));
  const { nsgiFrameworkErrors, nsgiPlugin } = await import('../../adapters/fastify.js');
  // Errors an app writes to wsgi.errors go to Fastify's logger (JSON lines on stdout).
  const fastify = Fastify({ frameworkErrors: nsgiFrameworkErrors, logger: { level: 'error' } });
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
  return run(fastify.server, options, () => fastify.close());
};

const startRaw: ServerStarter = async (app, options) => {
  const { serve } = await import('../server/serve.js');
  let server;
  try {
    server = await serve(app, { ...options, scriptName: options.mount });
  } catch (err) {
    throw listenError(err as NodeJS.ErrnoException, options);
  }
  return {
    url: server.url,
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
