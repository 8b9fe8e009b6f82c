/** The hosts `nsgi serve --server` can start, each behind the same small interface. */

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

const startNode: ServerStarter = async (app, options) => {
  const { createNodeServer } = await import('../../adapters/node.js');
  const server = createNodeServer(app, { ...options, scriptName: options.mount });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new CliError(`${options.host}:${options.port} is already in use; pick another port with --port`));
      } else if (err.code === 'EACCES') {
        reject(new CliError(`no permission to listen on ${options.host}:${options.port}; use a port above 1023`));
      } else {
        reject(new CliError(`cannot listen on ${options.host}:${options.port}: ${err.message}`));
      }
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    forceClose: () => server.closeAllConnections(),
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs).unref();
        // Keep-alive connections that go idle while in-flight requests finish are closed as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 50).unref();
        server.close(() => {
          clearTimeout(timer);
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
};

const unavailable = (name: string, issue: string): ServerStarter => async () => {
  throw new CliError(`--server ${name} is not available in this version of nsgi yet (${issue}); use --server node`, 2);
};

export const SERVERS: Readonly<Record<string, ServerStarter>> = {
  node: startNode,
  raw: unavailable('raw', 'the bundled raw-socket server is not part of this release'),
  express: unavailable('express', 'the Express adapter is not part of this release'),
  fastify: unavailable('fastify', 'the Fastify plugin is not part of this release'),
};
