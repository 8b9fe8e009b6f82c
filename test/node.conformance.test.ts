import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createNodeServer } from '../adapters/node.js';
import type { ServerFactory } from './conformance/harness.js';
import { conformanceSuite } from './conformance/suite.js';

const nodeFactory: ServerFactory = async (app, { mount, ...options }) => {
  const server = createNodeServer(app, { ...options, scriptName: mount });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

conformanceSuite('node:http', nodeFactory, { mount: '' });
conformanceSuite('node:http', nodeFactory, { mount: '/mnt' });
