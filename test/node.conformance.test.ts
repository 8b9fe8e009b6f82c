import type { Server } from 'node:http';
import { createNodeServer } from '../adapters/node.js';
import { listening, type ServerFactory } from './conformance/harness.js';
import { conformanceSuite } from './conformance/suite.js';

const nodeFactory: ServerFactory = async (app, { mount, ...options }) =>
  listening(createNodeServer(app, { ...options, scriptName: mount }) as Server);

conformanceSuite('node:http', nodeFactory, { mount: '' });
conformanceSuite('node:http', nodeFactory, { mount: '/mnt' });
