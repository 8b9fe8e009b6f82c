/**
 * The conformance suite over HTTP/2 (SPEC §17): the same cases, each request sent as a stream, on
 * every host that serves h2. Cases about HTTP/1.1's own framing and connection handling have no
 * HTTP/2 form and are skipped by name, with the reason.
 */

import { fastifyH2Factory, nodeH2cFactory, nodeH2Factory, rawTlsFactory } from './conformance/factories.js';
import { conformanceSuite } from './conformance/suite.js';

/** Cases that drive an HTTP/1.1 socket byte by byte: test/h2.test.ts checks each over streams. */
const SOCKET_LEVEL = 'drives an HTTP/1.1 socket step by step; test/h2.test.ts checks the same over h2 streams';

/** HTTP/1.1's own syntax and framing: HTTP/2 has no way to send it (RFC 9113 §8.2.2). */
const H1_SYNTAX = 'HTTP/1.1 message syntax, which HTTP/2 cannot carry';
const H1_CODING = 'Transfer-Encoding and chunked coding, which HTTP/2 forbids (RFC 9113 §8.2.2)';

const cannot: Record<string, string> = {
  'refuse.length-and-chunked': H1_CODING,
  'refuse.transfer-encoding': H1_CODING,
  'refuse.bad-chunk-size': H1_CODING,
  'refuse.header-syntax': `${H1_SYNTAX} (HPACK fields; nghttp2 resets a stream with NUL, CR or LF in a value)`,
  'refuse.bare-cr-at-once': H1_SYNTAX,
  'body.backpressure': SOCKET_LEVEL,
  'body.client-disconnect': SOCKET_LEVEL,
  'input.body-cut-short': SOCKET_LEVEL,
  'input.expect-continue': SOCKET_LEVEL,
  'start-response.write': SOCKET_LEVEL,
};

const H2 = { protocol: 'HTTP/2.0', cannot } as const;

conformanceSuite('the raw server over h2 (TLS)', rawTlsFactory, { ...H2, mount: '' });
conformanceSuite('the raw server over h2 (TLS)', rawTlsFactory, { ...H2, mount: '/mnt' });
conformanceSuite('node:http2 (TLS)', nodeH2Factory, { ...H2, mount: '' });
conformanceSuite('node:http2 (h2c)', nodeH2cFactory, { ...H2, mount: '/mnt' });
conformanceSuite('Fastify with http2: true', fastifyH2Factory, { ...H2, mount: '' });
