/** The conformance suite on every server through the pass-through middleware stack, validate outside and inside. */
import { expressFactory, fastifyFactory, nodeFactory, rawFactory } from './conformance/factories.js';
import { throughMiddleware } from './conformance/harness.js';
import { conformanceSuite } from './conformance/suite.js';

conformanceSuite('raw server through the middleware', throughMiddleware(rawFactory), { mount: '' });
conformanceSuite('node:http through the middleware', throughMiddleware(nodeFactory), { mount: '/mnt' });
conformanceSuite('Express through the middleware', throughMiddleware(expressFactory), { mount: '' });
conformanceSuite('Fastify through the middleware', throughMiddleware(fastifyFactory), { mount: '/mnt' });
