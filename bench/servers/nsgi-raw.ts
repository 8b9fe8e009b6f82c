/** The same nsgi app on the bundled raw-socket server. */
import { serve } from '../../src/server/index.js';
import { app } from './app.js';

const server = await serve(app, { host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`);
process.on('SIGTERM', () => process.exit(0));
