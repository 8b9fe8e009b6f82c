/** The nsgi app on the bundled server with TLS: h2 through node:http2, HTTP/1.1 through its own parser. */
import { serve } from '../../src/server/index.js';
import { app } from './app.js';
import { TLS } from './tls.js';

const server = await serve(app, { host: '127.0.0.1', port: Number(process.env.PORT ?? 0), ...TLS });
process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`);
process.on('SIGTERM', () => process.exit(0));
