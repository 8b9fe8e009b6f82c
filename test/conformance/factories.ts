/** Every server the conformance suite runs on, as a factory: the test files and the lint matrix share them. */

import { readFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { expressUpgrade, toExpress } from '../../adapters/express.js';
import type { Gateway } from '../../src/gateway.js';
import { nsgiFrameworkErrors, nsgiPlugin } from '../../adapters/fastify.js';
import { createNodeServer } from '../../adapters/node.js';
import { serve } from '../../src/server/index.js';
import { once } from 'node:events';
import { listening, type ServerFactory, type ServerHandle } from './harness.js';

export const rawFactory: ServerFactory = async (app, { mount, ...options }) => {
  const server = await serve(app, { ...options, scriptName: mount, host: '127.0.0.1', port: 0 });
  const address = server.address();
  if (typeof address === 'string') throw new Error('expected a TCP address');
  return { port: address.port, close: () => server.close(0) };
};

export const nodeFactory: ServerFactory = async (app, { mount, ...options }) => {
  const server = createNodeServer(app, { ...options, scriptName: mount });
  return closingSockets(await listening(server), server.gateway);
};

/** node:http's close() does not see upgraded connections: the gateway closes its WebSockets first. */
function closingSockets(handle: ServerHandle, gateway: Gateway): ServerHandle {
  return {
    port: handle.port,
    close: async () => {
      await gateway.closeWebSockets(0);
      await handle.close();
    },
  };
}

/** The app mounted in an Express app the usual way; the suite's trustProxy becomes Express's 'trust proxy'. */
export const expressFactory: ServerFactory = async (app, { mount, trustProxy, ...options }) => {
  const web = express();
  if (trustProxy !== undefined) web.set('trust proxy', trustProxy);
  const middleware = toExpress(app, { ...options, expressTrustProxy: trustProxy !== undefined });
  web.use(mount || '/', middleware);
  const server = http.createServer(web);
  // Lets the app's first read of wsgi.input send `100 Continue`, as on node:http.
  server.on('checkContinue', web);
  server.on('upgrade', expressUpgrade(web));
  return closingSockets(await listening(server), middleware.gateway);
};

/** The test certificate (for localhost), for the hosts that serve HTTP/2 over TLS. */
const TLS = {
  key: readFileSync(new URL('../fixtures/key.pem', import.meta.url)),
  cert: readFileSync(new URL('../fixtures/cert.pem', import.meta.url)),
};

/** The raw server with TLS: connections that pick h2 by ALPN are served through node:http2 (SPEC §17). */
export const rawTlsFactory: ServerFactory = async (app, { mount, ...options }) => {
  const server = await serve(app, { ...options, ...TLS, scriptName: mount, host: '127.0.0.1', port: 0 });
  const address = server.address();
  if (typeof address === 'string') throw new Error('expected a TCP address');
  return { port: address.port, tls: true, close: () => server.close(0) };
};

/** createNodeServer with `http2: true`: with TLS (h2 and HTTP/1.1 by ALPN), or h2c without. */
function nodeH2(secure: boolean): ServerFactory {
  return async (app, { mount, ...options }) => {
    const server = createNodeServer(app, { ...options, scriptName: mount, http2: true, ...(secure ? TLS : {}) });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      port: (server.address() as AddressInfo).port,
      tls: secure,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  };
}
export const nodeH2Factory = nodeH2(true);
export const nodeH2cFactory = nodeH2(false);

/** The plugin on a Fastify created with `http2: true` (h2c). */
export const fastifyH2Factory: ServerFactory = (app, options) => fastifyOn({ http2: true }, app, options);

/** The plugin on a Fastify with `http2: true` and TLS (`https` with `allowHTTP1`): h2 and HTTP/1.1 by ALPN. */
export const fastifyH2TlsFactory: ServerFactory = async (app, options) => ({
  ...(await fastifyOn({ http2: true, https: { ...TLS, allowHTTP1: true } }, app, options)),
  tls: true,
});

/** The app registered with the plugin; the suite's log goes to Fastify's logger, trustProxy to Fastify's. */
export const fastifyFactory: ServerFactory = (app, options) => fastifyOn({}, app, options);

async function fastifyOn(
  server: { http2?: true; https?: object },
  app: Parameters<ServerFactory>[0],
  { mount, trustProxy, errorLog, ...options }: Parameters<ServerFactory>[1],
): Promise<ServerHandle> {
  const fastify = Fastify({
    ...(server as object),
    // Paths Fastify's router cannot decode (%FF) still reach the app, as the README recommends.
    frameworkErrors: nsgiFrameworkErrors,
    trustProxy: trustProxy as boolean | string | undefined,
    logger:
      errorLog === undefined
        ? false
        : {
            level: 'error',
            stream: {
              write: (line: string) => errorLog.write(`${String((JSON.parse(line) as { msg?: string }).msg)}\n`),
            },
          },
  });
  await fastify.register(nsgiPlugin, { app, prefix: mount, trustProxy, ...options });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return {
    port: (fastify.server.address() as AddressInfo).port,
    close: async () => {
      (fastify.server as Partial<http.Server>).closeAllConnections?.();
      await fastify.close();
    },
  };
}

/** The app as a Fetch handler, served by @hono/node-server. */
export const fetchFactory: ServerFactory = async (app, { mount, ...options }) => {
  const { serve: honoServe } = await import('@hono/node-server');
  const { toFetchHandler } = await import('../../adapters/fetch.js');
  const server = honoServe({
    fetch: toFetchHandler(app, { ...options, scriptName: mount }),
    port: 0,
    hostname: '127.0.0.1',
  }) as Server;
  if (!server.listening) await new Promise((r) => server.once('listening', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};
