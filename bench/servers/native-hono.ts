/** Baseline for the Fetch bridges: a Hono app on @hono/node-server. */
import type { Server } from 'node:net';
import { serve } from '@hono/node-server';
import { hono } from './hono-app.js';

const server = serve({
  fetch: hono.fetch,
  port: Number(process.env.PORT ?? 0),
  hostname: '127.0.0.1',
}) as unknown as Server;
server.on('listening', () => process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => process.exit(0));
