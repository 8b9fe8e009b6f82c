/** The Hono app the Fetch-bridge rows use: the same bytes as every other server. */
import { Hono } from 'hono';
import { BIG, HELLO, TEXT } from './payloads.js';

export const hono = new Hono();
hono.get(
  '/hello',
  () => new Response(HELLO, { headers: { 'Content-Type': TEXT, 'Content-Length': String(HELLO.length) } }),
);
hono.get('/64k', () => new Response(BIG, { headers: { 'Content-Type': TEXT, 'Content-Length': String(BIG.length) } }));
hono.post('/echo', async (c) => {
  const body = new Uint8Array(await c.req.arrayBuffer());
  return new Response(body, { headers: { 'Content-Type': TEXT, 'Content-Length': String(body.length) } });
});
