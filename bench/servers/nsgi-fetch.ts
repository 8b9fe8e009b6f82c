/** toFetchHandler: the nsgi app as a Fetch handler on @hono/node-server (against native-hono). */
import type { Server } from 'node:net';
import { serve } from '@hono/node-server';
import { toFetchHandler } from '../../adapters/fetch.js';
import { app } from './app.js';

const server = serve({
  fetch: toFetchHandler(app),
  port: Number(process.env.PORT ?? 0),
  hostname: '127.0.0.1',
}) as unknown as Server;
server.on('listening', () => process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => process.exit(0));
