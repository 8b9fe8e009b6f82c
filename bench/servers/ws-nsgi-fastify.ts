/** bench:ws: the echo app under Fastify's plugin. */
import Fastify from 'fastify';
import { nsgiPlugin } from '../../adapters/fastify.js';
import { collectOnSignal } from './listen.js';
import { echo } from './ws-app.js';

const fastify = Fastify();
await fastify.register(nsgiPlugin, { app: echo });
await fastify.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
const address = fastify.server.address();
process.stdout.write(`ready ${typeof address === 'object' && address !== null ? address.port : 0}\n`);
process.on('SIGTERM', () => process.exit(0));
collectOnSignal();
