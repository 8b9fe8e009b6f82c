/**
 * The conformance suite through toFetchHandler on @hono/node-server. A Fetch Request and Response
 * cannot carry everything HTTP/1.1 can; the cases that check what they drop are listed with why.
 */
import { fetchFactory } from './conformance/factories.js';
import { conformanceSuite } from './conformance/suite.js';

const cannot = {
  '7': "a Request's URL has no fragment, so REQUEST_URI cannot keep one",
  '12': 'Headers lower-cases names and joins repeated fields, so raw pairs cannot be kept as received',
  '13': 'Headers lower-cases names and joins repeated fields, so raw pairs cannot be kept as received',
  '31': 'Headers joins two Content-Type lines into one value (two Host lines are still refused: a Host has no comma)',
  '26': 'node:http under @hono/node-server answers Expect: 100-continue itself, before the handler runs',
  '32': "the host's own parser answers malformed Transfer-Encoding before a Request exists",
  '42': '@hono/node-server sends the standard reason phrase, not the Response statusText',
  '43': '@hono/node-server destroys the socket on a body stream error without flushing the chunks it was writing',
};

conformanceSuite('toFetchHandler on @hono/node-server', fetchFactory, { mount: '', cannot });
conformanceSuite('toFetchHandler on @hono/node-server', fetchFactory, { mount: '/mnt', cannot });
