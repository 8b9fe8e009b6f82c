/** Baseline: Fastify routes answering with the same bytes as the other servers. */
import Fastify from 'fastify';
import { BIG, HELLO, TEXT } from './payloads.js';
import { listen } from './listen.js';

const fastify = Fastify();
fastify.get('/hello', (_req, reply) => {
  void reply.header('content-type', TEXT).send(HELLO);
});
fastify.get('/64k', (_req, reply) => {
  void reply.header('content-type', TEXT).send(BIG);
});
// The body as bytes, whatever its type, as the nsgi app reads it.
fastify.removeAllContentTypeParsers();
fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
fastify.post('/echo', (req, reply) => {
  void reply.header('content-type', TEXT).send(req.body);
});
await fastify.ready();
listen(fastify.server);
