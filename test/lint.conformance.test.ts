/** The conformance suite on every server again, each app under validate: no server-side lint error on any server. */
import { expressFactory, fastifyFactory, nodeFactory, rawFactory } from './conformance/factories.js';
import { linted } from './conformance/harness.js';
import { conformanceSuite } from './conformance/suite.js';

conformanceSuite('raw server under validate', linted(rawFactory), { mount: '' });
conformanceSuite('node:http under validate', linted(nodeFactory), { mount: '' });
conformanceSuite('Express under validate', linted(expressFactory), { mount: '' });
conformanceSuite('Fastify under validate', linted(fastifyFactory), { mount: '/mnt' });
