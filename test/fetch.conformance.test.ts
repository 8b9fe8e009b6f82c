/**
 * The conformance suite through toFetchHandler on @hono/node-server. A Fetch Request and Response
 * cannot carry everything HTTP/1.1 can; the cases that check what they drop are listed with why.
 * (Header lines are taken from the Node request @hono/node-server passes along, so they are kept.)
 */
import { fetchFactory } from './conformance/factories.js';
import { conformanceSuite } from './conformance/suite.js';

const cannot = {
  '7': "a Request's URL has no fragment, so REQUEST_URI cannot keep one",
  '26': 'node:http under @hono/node-server answers Expect: 100-continue itself, before the handler runs',
  '31b':
    '@hono/node-server answers a Host it cannot make a URL of with its own 400 (keeping the connection) before a Request exists',
  '32': "the host's own parser answers malformed Transfer-Encoding before a Request exists",
  '42': '@hono/node-server sends the standard reason phrase, not the Response statusText',
  '43': '@hono/node-server destroys the socket on a body stream error without flushing the chunks it was writing',
};

conformanceSuite('toFetchHandler on @hono/node-server', fetchFactory, { mount: '', cannot });
conformanceSuite('toFetchHandler on @hono/node-server', fetchFactory, { mount: '/mnt', cannot });
