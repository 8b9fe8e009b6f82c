/** The nsgi app registered in Fastify with nsgiPlugin. */
import Fastify from 'fastify';
import { nsgiPlugin } from '../../adapters/fastify.js';
import { app } from './app.js';
import { listen } from './listen.js';

const fastify = Fastify();
await fastify.register(nsgiPlugin, { app });
await fastify.ready();
listen(fastify.server);
