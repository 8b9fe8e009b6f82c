import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { nsgiFrameworkErrors, nsgiPlugin } from '../adapters/fastify.js';
import type { ServerFactory } from './conformance/harness.js';
import { conformanceSuite } from './conformance/suite.js';

/** The app registered with the plugin; the suite's log goes to Fastify's logger, trustProxy to Fastify's. */
const fastifyFactory: ServerFactory = async (app, { mount, trustProxy, errorLog, ...options }) => {
  const fastify = Fastify({
    // Paths Fastify's router cannot decode (%FF) still reach the app, as the README recommends.
    frameworkErrors: nsgiFrameworkErrors,
    trustProxy: trustProxy as boolean | string | undefined,
    logger: errorLog === undefined ? false : { level: 'error', stream: { write: (line: string) => errorLog.write(`${String((JSON.parse(line) as { msg?: string }).msg)}\n`) } },
  });
  await fastify.register(nsgiPlugin, { app, prefix: mount, trustProxy, ...options });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return {
    port: (fastify.server.address() as AddressInfo).port,
    close: async () => {
      fastify.server.closeAllConnections();
      await fastify.close();
    },
  };
};

conformanceSuite('Fastify', fastifyFactory, { mount: '' });
conformanceSuite('Fastify', fastifyFactory, { mount: '/mnt' });
