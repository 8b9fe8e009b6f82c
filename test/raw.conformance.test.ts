import { serve } from '../src/server/index.js';
import type { ServerFactory } from './conformance/harness.js';
import { conformanceSuite } from './conformance/suite.js';

const rawFactory: ServerFactory = async (app, { mount, ...options }) => {
  const server = await serve(app, { ...options, scriptName: mount, host: '127.0.0.1', port: 0 });
  const address = server.address();
  if (typeof address === 'string') throw new Error('expected a TCP address');
  return { port: address.port, close: () => server.close(0) };
};

conformanceSuite('raw server', rawFactory, { mount: '' });
conformanceSuite('raw server', rawFactory, { mount: '/mnt' });
