/**
 * The conformance suite through toFetchHandler on @hono/node-server. A Fetch Request and Response
 * cannot carry everything HTTP/1.1 can; the cases that check what they drop are listed with why.
 * (Header lines are taken from the Node request @hono/node-server passes along, so they are kept.)
 */
import { fetchFactory } from './conformance/factories.js';
import { conformanceSuite } from './conformance/suite.js';

const cannot = {
  'environ.fragment': "a Request's URL has no fragment, so REQUEST_URI cannot keep one",
  'input.expect-continue':
    'node:http under @hono/node-server answers Expect: 100-continue itself, before the handler runs',
  'refuse.invalid-host':
    '@hono/node-server answers a Host it cannot make a URL of with its own 400 (keeping the connection) before a Request exists',
  'refuse.transfer-encoding': "the host's own parser answers malformed Transfer-Encoding before a Request exists",
  'start-response.exc-info-before-body':
    '@hono/node-server sends the standard reason phrase, not the Response statusText',
  'start-response.exc-info-after-head':
    '@hono/node-server destroys the socket on a body stream error without flushing the chunks it was writing',
};

conformanceSuite('toFetchHandler on @hono/node-server', fetchFactory, { mount: '', cannot });
conformanceSuite('toFetchHandler on @hono/node-server', fetchFactory, { mount: '/mnt', cannot });
