/**
 * The raw server against exact request bytes: valid requests in every form the RFC allows, malformed
 * ones, smuggling attempts, limits and pipelines. Each case is sent on its own connection; refused
 * ones must get the right status and then a closed connection.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { serve, type NsgiServer } from '../src/server/index.js';
import type { App } from '../src/types.js';
import { header, rawRequest, type RawExchange } from './helpers/raw-http.js';

/** Echoes what the app saw, as JSON. */
const echo: App = async (environ, startResponse) => {
  const body = await environ['wsgi.input'].read();
  startResponse('200 OK', [['Content-Type', 'application/json']]);
  const seen = {
    method: environ.REQUEST_METHOD,
    uri: environ.REQUEST_URI,
    path: environ.PATH_INFO,
    query: environ.QUERY_STRING,
    protocol: environ.SERVER_PROTOCOL,
    host: environ.HTTP_HOST,
    headers: environ['nsgi.raw_headers'],
    body: Buffer.from(body).toString('latin1'),
  };
  return [Buffer.from(JSON.stringify(seen), 'latin1')];
};

interface Seen {
  method: string;
  uri: string;
  path: string;
  query: string;
  protocol: string;
  host: string | undefined;
  headers: Array<[string, string]>;
  body: string;
}

const LIMITS = {
  maxRequestTarget: 200,
  maxHeaderSize: 2048,
  maxHeaderCount: 20,
  maxBodySize: 10_000,
  maxChunkExtension: 64,
};

let server: NsgiServer;
let port = 0;
before(async () => {
  server = await serve(echo, { ...LIMITS, port: 0, errorLog: { write() {} } });
  port = (server.address() as { port: number }).port;
});
after(() => server.close(0));

const H = 'Host: h\r\n';
const get = (target = '/', extra = '') => `GET ${target} HTTP/1.1\r\n${H}${extra}\r\n`;
const post = (headers: string, body: string) => `POST /p HTTP/1.1\r\n${H}${headers}\r\n${body}`;
const chunked = (body: string) => post('Transfer-Encoding: chunked\r\n', body);

function seen(r: RawExchange, i = 0): Seen {
  const res = r.responses[i]!;
  assert.equal(res.status, 200, res.body.toString());
  return JSON.parse(res.body.toString('latin1')) as Seen;
}

interface Case {
  name: string;
  send: string | string[];
  /** Expected statuses of the final responses, in order. */
  status: number[];
  /** The server must close the connection afterwards (default: when the last status is not 2xx). */
  closed?: boolean;
  check?: (r: RawExchange) => void;
  methods?: string[];
}

const ok = (name: string, send: string | string[], check?: (r: RawExchange) => void): Case => ({
  name,
  send,
  status: [200],
  check,
});
const refused = (name: string, send: string | string[], status: number): Case => ({
  name,
  send,
  status: [status],
  closed: true,
});

const cases: Case[] = [
  // Request line (RFC 9112 §3)
  ok('a plain GET', get(), (r) => assert.equal(seen(r).method, 'GET')),
  ok('one empty line before the request line is ignored', '\r\n' + get()),
  ok('several empty lines before the request line are ignored', '\r\n\r\n\r\n' + get()),
  ok('methods are case-sensitive tokens, passed on unchanged', get().replace('GET', 'get'), (r) =>
    assert.equal(seen(r).method, 'get'),
  ),
  ok('an unregistered method token', get().replace('GET', 'PURGE'), (r) => assert.equal(seen(r).method, 'PURGE')),
  ok('a method with punctuation tchars', get().replace('GET', 'M-SEARCH'), (r) =>
    assert.equal(seen(r).method, 'M-SEARCH'),
  ),
  {
    name: 'HTTP/1.0 without Host is served, then the connection closes',
    send: 'GET / HTTP/1.0\r\n\r\n',
    status: [200],
    closed: true,
    check: (r) => assert.equal(seen(r).protocol, 'HTTP/1.0'),
  },
  {
    name: 'HTTP/1.0 with keep-alive stays open and says so',
    send: ['GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 'GET /2 HTTP/1.0\r\n\r\n'],
    status: [200, 200],
    closed: true,
    check: (r) => assert.equal(header(r.responses[0]!, 'connection'), 'keep-alive'),
  },
  ok('a higher HTTP/1.x minor is served as HTTP/1.1', get().replace('HTTP/1.1', 'HTTP/1.2'), (r) =>
    assert.equal(seen(r).protocol, 'HTTP/1.1'),
  ),
  refused('HTTP/2.0 is a version this server does not speak', get().replace('HTTP/1.1', 'HTTP/2.0'), 505),
  refused('HTTP/0.9 as a version token', get().replace('HTTP/1.1', 'HTTP/0.9'), 505),
  refused('HTTP/3.0', get().replace('HTTP/1.1', 'HTTP/3.0'), 505),
  refused('the HTTP/2 connection preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505),
  refused('no version (HTTP/0.9 style)', 'GET /\r\n\r\n', 400),
  refused('a lower-case version', get().replace('HTTP/1.1', 'http/1.1'), 400),
  refused('a two-digit minor version', get().replace('HTTP/1.1', 'HTTP/1.10'), 400),
  refused('a zero-padded major version', get().replace('HTTP/1.1', 'HTTP/01.1'), 400),
  refused('a version without a minor', get().replace('HTTP/1.1', 'HTTP/1'), 400),
  refused('HTTPS/1.1 as a version', get().replace('HTTP/1.1', 'HTTPS/1.1'), 400),
  refused('two spaces after the method', get().replace('GET /', 'GET  /'), 400),
  refused('two spaces before the version', get().replace('/ HTTP', '/  HTTP'), 400),
  refused('a tab as separator', get().replace('GET /', 'GET\t/'), 400),
  refused('a space after the version', get().replace('HTTP/1.1\r\n', 'HTTP/1.1 \r\n'), 400),
  refused('a space before the method', ' ' + get(), 400),
  refused("a method with '('", get().replace('GET', 'GE(T'), 400),
  refused('a NUL in the method', get().replace('GET', 'G\0T'), 400),
  refused('a non-ASCII byte in the method', get().replace('GET', 'G\xc9T'), 400),
  refused('bare LF line endings', 'GET / HTTP/1.1\nHost: h\n\n', 400),
  refused('a bare LF after one header', 'GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n', 400),
  refused('a bare CR in the request line', 'GET /\r HTTP/1.1\r\nHost: h\r\n\r\n', 400),

  // Request target (RFC 9112 §3.2)
  refused('a space inside the target', get('/a b'), 400),
  refused('raw UTF-8 in the target', get('/caf\xc3\xa9'), 400),
  refused('a DEL in the target', get('/a\x7f'), 400),
  refused('a NUL in the target', get('/a\0b'), 400),
  ok('OPTIONS * (asterisk-form)', 'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n', (r) => assert.equal(seen(r).uri, '*')),
  refused('asterisk-form with GET', get('*'), 400),
  refused('authority-form with GET', get('example.com:80'), 400),
  refused('CONNECT on an origin server', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 501),
  refused('CONNECT with an origin-form target', 'CONNECT /path HTTP/1.1\r\nHost: h\r\n\r\n', 400),
  refused('CONNECT without a port', 'CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n', 400),
  refused('a relative target', get('foo/bar'), 400),
  ok('absolute-form: the target names the host', get('http://example.com/x?y=1'), (r) => {
    const s = seen(r);
    assert.equal(s.host, 'example.com');
    assert.equal(s.path, '/x');
    assert.equal(s.query, 'y=1');
  }),
  refused('absolute-form with a scheme other than http(s)', get('ftp://example.com/x'), 400),
  ok('a fragment is passed on and left out of PATH_INFO', get('/a#frag'), (r) => assert.equal(seen(r).path, '/a')),
  ok('quotes and bars in the target are passed on unchanged', get('/"a"|b'), (r) =>
    assert.equal(seen(r).uri, '/"a"|b'),
  ),
  ok('percent-escapes are not decoded in REQUEST_URI', get('/a%2Fb%zz'), (r) => assert.equal(seen(r).uri, '/a%2Fb%zz')),
  ok('a target of exactly the limit', get('/' + 'a'.repeat(199))),
  refused('a target one byte over the limit', get('/' + 'a'.repeat(200)), 414),
  refused('an unfinished request line far over the limit', 'GET /' + 'a'.repeat(400), 414),
  refused('an unfinished method far over the limit', 'G'.repeat(400), 400),

  // Host (RFC 9112 §3.2)
  refused('HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400),
  refused('two Host lines', get('/', 'Host: i\r\n'), 400),
  refused('two identical Host lines', get('/', H), 400),
  refused('two Host lines on HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n', 400),
  refused('a Host with userinfo', 'GET / HTTP/1.1\r\nHost: u@h\r\n\r\n', 400),
  refused('a Host with a path', 'GET / HTTP/1.1\r\nHost: h/p\r\n\r\n', 400),
  refused('a Host list', 'GET / HTTP/1.1\r\nHost: a,b\r\n\r\n', 400),
  refused('a Host with a space inside', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400),
  refused('a Host with a non-digit port', 'GET / HTTP/1.1\r\nHost: h:8o\r\n\r\n', 400),
  refused('absolute-form without Host on HTTP/1.1', 'GET http://h/ HTTP/1.1\r\n\r\n', 400),
  ok('an empty Host', 'GET / HTTP/1.1\r\nHost:\r\n\r\n'),
  ok('a Host with an empty port', 'GET / HTTP/1.1\r\nHost: h:\r\n\r\n', (r) => assert.equal(seen(r).host, 'h:')),
  ok('an IPv6 literal Host', 'GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n', (r) =>
    assert.equal(seen(r).host, '[::1]:8080'),
  ),

  // Header fields (RFC 9112 §5, RFC 9110 §5.5)
  refused('a space between field name and colon', get('/', 'X-A : 1\r\n'), 400),
  refused('a tab between field name and colon', get('/', 'X-A\t: 1\r\n'), 400),
  refused('obsolete line folding', get('/', 'X-A: 1\r\n  continued\r\n'), 400),
  refused('whitespace before the first field line', 'GET / HTTP/1.1\r\n Host: h\r\n\r\n', 400),
  refused('an empty field name', get('/', ': x\r\n'), 400),
  refused('a field line without a colon', get('/', 'X-A\r\n'), 400),
  refused("an '@' in a field name", get('/', 'X@A: 1\r\n'), 400),
  refused('a NUL in a field value', get('/', 'X-A: a\0b\r\n'), 400),
  refused('a bare CR in a field value', get('/', 'X-A: a\rb\r\n'), 400),
  refused('a BEL in a field value', get('/', 'X-A: a\x07b\r\n'), 400),
  refused('a DEL in a field value', get('/', 'X-A: a\x7fb\r\n'), 400),
  refused('a non-ASCII byte in a field name', get('/', 'X-\xe9: 1\r\n'), 400),
  ok('obs-text in a field value is passed on byte for byte', get('/', 'X-A: caf\xe9\r\n'), (r) =>
    assert.deepEqual(seen(r).headers[1], ['X-A', 'caf\xe9']),
  ),
  ok('whitespace around a field value is removed, inside it kept', get('/', 'X-A: \t a  b \t \r\n'), (r) =>
    assert.deepEqual(seen(r).headers[1], ['X-A', 'a  b']),
  ),
  ok('an empty field value', get('/', 'X-A:\r\n'), (r) => assert.deepEqual(seen(r).headers[1], ['X-A', ''])),
  ok('repeated fields are kept in order', get('/', 'X-A: 1\r\nX-B: 2\r\nX-A: 3\r\n'), (r) =>
    assert.deepEqual(seen(r).headers.slice(1), [
      ['X-A', '1'],
      ['X-B', '2'],
      ['X-A', '3'],
    ]),
  ),
  {
    name: 'Content_Length is an ordinary field, never framing',
    send: get('/', 'Content_Length: 5\r\n') + get('/second'),
    status: [200, 200],
    check: (r) => {
      assert.equal(seen(r).body, '');
      assert.equal(seen(r, 1).path, '/second');
    },
  },
  ok('as many fields as the limit allows', get('/', 'X: y\r\n'.repeat(19))),
  refused('more fields than the limit', get('/', 'X: y\r\n'.repeat(20)), 431),
  refused('a header section over the size limit', get('/', `X: ${'y'.repeat(2100)}\r\n`), 431),
  refused('an unfinished header section over the size limit', `GET / HTTP/1.1\r\nX: ${'y'.repeat(2100)}`, 431),

  // Content-Length (RFC 9112 §6.3)
  ok('a Content-Length body', post('Content-Length: 5\r\n', 'hello'), (r) => assert.equal(seen(r).body, 'hello')),
  ok('Content-Length: 0', post('Content-Length: 0\r\n', ''), (r) => assert.equal(seen(r).body, '')),
  ok('leading zeros in Content-Length are decimal', post('Content-Length: 0005\r\n', 'hello'), (r) =>
    assert.equal(seen(r).body, 'hello'),
  ),
  ok('a tab around the Content-Length value', post('Content-Length:\t5\t\r\n', 'hello'), (r) =>
    assert.equal(seen(r).body, 'hello'),
  ),
  ok('a GET body is framed like any other', get('/', 'Content-Length: 3\r\n') + 'abc', (r) =>
    assert.equal(seen(r).body, 'abc'),
  ),
  refused('Content-Length: +5', post('Content-Length: +5\r\n', 'hello'), 400),
  refused('Content-Length: -1', post('Content-Length: -1\r\n', ''), 400),
  refused('Content-Length: 0x5', post('Content-Length: 0x5\r\n', 'hello'), 400),
  refused('Content-Length: 3 2', post('Content-Length: 3 2\r\n', 'hello'), 400),
  refused('Content-Length: 1e1', post('Content-Length: 1e1\r\n', 'hello'), 400),
  refused('Content-Length: 1_0', post('Content-Length: 1_0\r\n', 'hello'), 400),
  refused('an empty Content-Length', post('Content-Length:\r\n', ''), 400),
  refused('two identical Content-Length lines', post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello'), 400),
  refused('two different Content-Length lines', post('Content-Length: 5\r\nContent-Length: 6\r\n', 'hello!'), 400),
  refused('a Content-Length list', post('Content-Length: 5, 5\r\n', 'hello'), 400),
  refused('a Content-Length past 2^64', post('Content-Length: 99999999999999999999999\r\n', ''), 413),
  refused('a Content-Length over the body limit', post('Content-Length: 10001\r\n', ''), 413),

  // Transfer-Encoding (RFC 9112 §6.1, §6.3)
  ok('a chunked body', chunked('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'), (r) =>
    assert.equal(seen(r).body, 'hello world'),
  ),
  ok("'Chunked' is case-insensitive", post('Transfer-Encoding: Chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), (r) =>
    assert.equal(seen(r).body, 'abc'),
  ),
  ok(
    "empty list elements are ignored (',chunked')",
    post('Transfer-Encoding: ,chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'),
    (r) => assert.equal(seen(r).body, 'abc'),
  ),
  refused(
    'Transfer-Encoding with Content-Length',
    post('Transfer-Encoding: chunked\r\nContent-Length: 3\r\n', '3\r\nabc\r\n0\r\n\r\n'),
    400,
  ),
  refused(
    'Content-Length with Transfer-Encoding (other order)',
    post('Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
    400,
  ),
  refused('Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
  refused('a coding without chunked', post('Transfer-Encoding: gzip\r\n', 'abc'), 400),
  refused('chunked not last', post('Transfer-Encoding: chunked, gzip\r\n', '0\r\n\r\n'), 400),
  refused('an unsupported coding before chunked', post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n'), 501),
  refused('identity before chunked', post('Transfer-Encoding: identity, chunked\r\n', '0\r\n\r\n'), 501),
  refused('chunked twice in one line', post('Transfer-Encoding: chunked, chunked\r\n', '0\r\n\r\n'), 400),
  refused(
    'chunked in two lines',
    post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
    400,
  ),
  refused('an empty Transfer-Encoding', post('Transfer-Encoding:\r\n', ''), 400),
  refused('chunked with a parameter', post('Transfer-Encoding: chunked;x=y\r\n', '0\r\n\r\n'), 400),
  refused("'xchunked'", post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n'), 400),

  // Chunked syntax (RFC 9112 §7.1)
  ok('upper-case hex chunk sizes', chunked('A\r\n0123456789\r\n0\r\n\r\n'), (r) =>
    assert.equal(seen(r).body, '0123456789'),
  ),
  ok('leading zeros in a chunk size', chunked('0003\r\nabc\r\n000\r\n\r\n'), (r) => assert.equal(seen(r).body, 'abc')),
  ok('a chunk extension without a value', chunked('3;ext\r\nabc\r\n0\r\n\r\n'), (r) =>
    assert.equal(seen(r).body, 'abc'),
  ),
  ok('a chunk extension with a token value', chunked('3;a=b\r\nabc\r\n0\r\n\r\n'), (r) =>
    assert.equal(seen(r).body, 'abc'),
  ),
  ok('a quoted chunk extension with an escape', chunked('3;a="b \\" c"\r\nabc\r\n0\r\n\r\n'), (r) =>
    assert.equal(seen(r).body, 'abc'),
  ),
  ok('several chunk extensions', chunked('3;a=b;c;d="e"\r\nabc\r\n0\r\n\r\n'), (r) =>
    assert.equal(seen(r).body, 'abc'),
  ),
  ok('whitespace around ; and = in chunk extensions', chunked('3 ; a = b ;c\r\nabc\r\n0\r\n\r\n'), (r) =>
    assert.equal(seen(r).body, 'abc'),
  ),
  ok('an extension on the last chunk', chunked('3\r\nabc\r\n0;done\r\n\r\n'), (r) => assert.equal(seen(r).body, 'abc')),
  ok(
    'trailer fields are accepted and not merged into the headers',
    chunked('3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n'),
    (r) => {
      const s = seen(r);
      assert.equal(s.body, 'abc');
      assert.ok(!s.headers.some(([n]) => n === 'X-Checksum'));
    },
  ),
  refused('a 0x chunk size', chunked('0x3\r\nabc\r\n0\r\n\r\n'), 400),
  refused('a negative chunk size', chunked('-3\r\nabc\r\n0\r\n\r\n'), 400),
  refused('a space before a chunk size', chunked(' 3\r\nabc\r\n0\r\n\r\n'), 400),
  refused('a space after a chunk size', chunked('3 \r\nabc\r\n0\r\n\r\n'), 400),
  refused('an empty chunk size', chunked('\r\nabc\r\n0\r\n\r\n'), 400),
  refused('a non-hex digit in a chunk size', chunked('3g\r\nabc\r\n0\r\n\r\n'), 400),
  refused('a bare ; after a chunk size', chunked('3;\r\nabc\r\n0\r\n\r\n'), 400),
  refused('an unbalanced quote in a chunk extension', chunked('3;a="b\r\nabc\r\n0\r\n\r\n'), 400),
  refused('a bare CR in a chunk extension', chunked('3;a\rb\r\nabc\r\n0\r\n\r\n'), 400),
  refused('a bare LF after a chunk size', chunked('3\nabc\r\n0\r\n\r\n'), 400),
  refused('chunk data longer than its size', chunked('3\r\nabcd\r\n0\r\n\r\n'), 400),
  refused('anything but CRLF after chunk data', chunked('3\r\nabcXX0\r\n\r\n'), 400),
  refused('a bare LF after chunk data', chunked('3\r\nabc\n0\r\n\r\n'), 400),
  refused('a chunk size past 2^64', chunked('FFFFFFFFFFFFFFFFF\r\n'), 413),
  refused(
    'chunks adding up past the body limit',
    chunked(`1000\r\n${'a'.repeat(4096)}\r\n1000\r\n${'a'.repeat(4096)}\r\n1000\r\n`),
    413,
  ),
  refused('chunk extensions past their limit', chunked(`3;${'x'.repeat(100)}\r\nabc\r\n0\r\n\r\n`), 413),
  refused('Content-Length in a trailer', chunked('3\r\nabc\r\n0\r\nContent-Length: 3\r\n\r\n'), 400),
  refused('Transfer-Encoding in a trailer', chunked('3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n'), 400),
  refused('a space before the colon in a trailer', chunked('3\r\nabc\r\n0\r\nX-T : 1\r\n\r\n'), 400),
  refused('obs-fold in a trailer', chunked('3\r\nabc\r\n0\r\nX-T: 1\r\n 2\r\n\r\n'), 400),

  // Expectations (RFC 9110 §10.1.1)
  refused('an unknown expectation', post('Content-Length: 3\r\nExpect: teapot\r\n', 'abc'), 417),
  ok(
    '100-continue on HTTP/1.0 is ignored',
    'POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
    (r) => assert.ok(!r.text.includes('100 Continue')),
  ),

  // Connections and pipelines (RFC 9112 §9)
  {
    name: 'Connection: close is answered, then the connection closes and later requests are not read',
    send: get('/', 'Connection: close\r\n') + get('/ignored'),
    status: [200],
    closed: true,
    check: (r) => {
      assert.equal(header(r.responses[0]!, 'connection'), 'close');
      assert.equal(r.responses.length, 1);
    },
  },
  {
    name: "'keep-alive, close' means close",
    send: get('/', 'Connection: keep-alive, close\r\n'),
    status: [200],
    closed: true,
  },
  {
    name: 'three pipelined GETs are answered in order',
    send: get('/1') + get('/2') + get('/3'),
    status: [200, 200, 200],
    check: (r) =>
      assert.deepEqual(
        [0, 1, 2].map((i) => seen(r, i).path),
        ['/1', '/2', '/3'],
      ),
  },
  {
    name: 'pipelined bodies of both framings between GETs',
    send: get('/1') + post('Content-Length: 2\r\n', 'ab') + get('/3') + chunked('1\r\nc\r\n0\r\n\r\n') + get('/5'),
    status: [200, 200, 200, 200, 200],
    check: (r) =>
      assert.deepEqual(
        [0, 1, 2, 3, 4].map((i) => seen(r, i).body),
        ['', 'ab', '', 'c', ''],
      ),
  },
  {
    name: 'Content-Length: 0 then another request: the second is not swallowed as body',
    send: post('Content-Length: 0\r\n', '') + get('/next'),
    status: [200, 200],
    check: (r) => assert.equal(seen(r, 1).path, '/next'),
  },
  {
    name: 'HEAD then GET in a pipeline',
    send: 'HEAD / HTTP/1.1\r\nHost: h\r\n\r\n' + get('/after'),
    methods: ['HEAD', 'GET'],
    status: [200, 200],
    check: (r) => {
      assert.equal(r.responses[0]!.body.length, 0);
      assert.equal(seen(r, 1).path, '/after');
    },
  },
  {
    name: 'a valid request then a malformed one: the first is answered, then 400 and close',
    send: get('/ok') + 'GET / HTTP/1.1\r\nHost : h\r\n\r\n',
    status: [200, 400],
    closed: true,
  },
  {
    name: 'a malformed request then a valid one: only the 400',
    send: 'GET / HTTP/1.1\r\nHost : h\r\n\r\n' + get('/ok'),
    status: [400],
    closed: true,
  },
  {
    name: 'a smuggled request inside a refused TE+CL body is never answered',
    send: post('Content-Length: 30\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n') + get('/smuggled'),
    status: [400],
    closed: true,
  },
  {
    name: 'a request split across many writes',
    send: ['GE', 'T /sp', 'lit HTTP/1.1\r', '\nHo', 'st: h\r\n', '\r', '\n'],
    status: [200],
    check: (r) => assert.equal(seen(r).path, '/split'),
  },
];

describe('raw server: request cases', () => {
  it(`has at least 100 cases (${cases.length})`, () => assert.ok(cases.length >= 100));
  for (const c of cases) {
    it(c.name, async () => {
      const methods = c.methods ?? c.status.map(() => 'GET');
      const closed = c.closed ?? c.status[c.status.length - 1]! >= 300;
      const r = await rawRequest(port, c.send, {
        methods,
        expect: c.status.length,
        waitForClose: closed,
        timeout: closed ? 3000 : 2000,
      });
      assert.deepEqual(
        r.responses.filter((x) => x.status >= 200).map((x) => x.status),
        c.status,
        `got ${JSON.stringify(r.text.slice(0, 400))}`,
      );
      if (closed) {
        assert.ok(r.closed, 'the server closes the connection');
        const last = r.responses[r.responses.length - 1]!;
        if (last.status >= 400) {
          assert.equal(header(last, 'connection'), 'close');
          assert.match(last.body.toString(), /\S/, 'the refusal says what was wrong');
        }
      } else {
        assert.ok(!r.closed, 'the connection stays open');
      }
      c.check?.(r);
    });
  }
});
