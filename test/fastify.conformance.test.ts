import { fastifyFactory } from './conformance/factories.js';
import { conformanceSuite } from './conformance/suite.js';

conformanceSuite('Fastify', fastifyFactory, { mount: '' });
conformanceSuite('Fastify', fastifyFactory, { mount: '/mnt' });
