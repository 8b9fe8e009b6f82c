/**
 * The seed examples inside a Fastify app, next to Fastify's own routes and JSON parsing:
 *
 *   npx tsx examples/fastify-site.ts      # http://127.0.0.1:3001/legacy/ and /api/hello
 */
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { nsgiFrameworkErrors, nsgiPlugin } from '../adapters/fastify.js';
import { app as examples } from './index.js';

// frameworkErrors: paths Fastify's router cannot decode (%FF) still reach the nsgi app.
export const site = Fastify({ frameworkErrors: nsgiFrameworkErrors });

await site.register(nsgiPlugin, { app: examples, prefix: '/legacy' });
site.addHook('onSend', async (_request, reply, payload) => {
  reply.header('x-served-by', 'fastify');
  return payload;
});
site.post('/api/echo', async (request) => ({ received: request.body }));
site.get('/api/hello', async () => ({ hello: 'from Fastify' }));

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await site.listen({ port: 3001, host: '127.0.0.1' });
  console.log('http://127.0.0.1:3001/legacy/');
}
