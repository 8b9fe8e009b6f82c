/** fromNodeListener: the Express app as an nsgi app on the bundled server (against native-express). */
process.env.NSGI_BENCH_IMPORT = '1';
const { fromNodeListener } = await import('../../adapters/node.js');
const { serve } = await import('../../src/server/index.js');
const { app } = await import('./native-express.js');

const server = await serve(fromNodeListener(app), { host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`);
process.on('SIGTERM', () => process.exit(0));
