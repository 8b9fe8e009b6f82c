/** fromFetchHandler: the Hono app as an nsgi app on the bundled server (against native-hono). */
import { fromFetchHandler } from '../../adapters/fetch.js';
import { serve } from '../../src/server/index.js';
import { hono } from './hono-app.js';

const server = await serve(fromFetchHandler(hono.fetch), { host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`);
process.on('SIGTERM', () => process.exit(0));
