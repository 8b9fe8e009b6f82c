/** The request parser on its own: any split of the same bytes gives the same events. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_PARSER_LIMITS, ParseError, RequestParser, type ParserLimits } from '../../src/server/parser.js';

const LIMITS: ParserLimits = {
  ...DEFAULT_PARSER_LIMITS,
  maxBodySize: 1_000_000,
  maxHeaderSize: 4096,
  maxRequestTarget: 1024,
};

/** Everything the parser reports for `pieces`, fed in order, with body bytes joined per message. */
function events(pieces: Buffer[]): string[] {
  const out: string[] = [];
  let body: Buffer[] = [];
  const parser = new RequestParser(LIMITS, {
    onHead: (h) =>
      out.push(
        `head ${h.method} ${h.target} ${h.httpVersion} ${JSON.stringify(h.rawHeaders)} ${h.bodyLength} ${h.keepAlive} ${h.expectContinue}`,
      ),
    onBody: (c) => body.push(Buffer.from(c)),
    onComplete: (t) => {
      out.push(`body ${Buffer.concat(body).toString('latin1')}`, `end ${JSON.stringify(t)}`);
      body = [];
    },
  });
  try {
    for (const piece of pieces) {
      let off = 0;
      while (off < piece.length) off = parser.execute(piece, off);
    }
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    out.push(`error ${err.status}`);
  }
  return out;
}

const VALID = [
  'GET / HTTP/1.1\r\nHost: h\r\n\r\n',
  '\r\nGET /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\nX: \t y \r\n\r\n',
  'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world',
  'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a="b\\"c" ; d\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok',
  'get http://example.com/x HTTP/1.1\r\nHost: example.com\r\nX-Obs: caf\xe9\r\n\r\n',
];

const INVALID = [
  'GET / HTTP/1.1\r\nHost : h\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX',
  'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a\rb\r\nabc\r\n',
  'GET / HTTP/2.0\r\nHost: h\r\n\r\n',
  'GET /\n',
  'GET / HTTP/1.1\rHost: h\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n',
  'GET / HTTP/1.1\r\nX: a\x01b\r\nHost: h\r\n\r\n',
  'CONNECT /path HTTP/1.1\r\nHost: h\r\n\r\n',
  'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
];

const latin1 = (s: string) => Buffer.from(s, 'latin1');

describe('request parser', () => {
  it('gives the same events for every split of a message into two pieces, valid or not', () => {
    for (const text of [...VALID, ...INVALID]) {
      const bytes = latin1(text);
      const whole = events([bytes]);
      for (let i = 1; i < bytes.length; i++) {
        assert.deepEqual(
          events([bytes.subarray(0, i), bytes.subarray(i)]),
          whole,
          `split at ${i} of ${JSON.stringify(text)}`,
        );
      }
    }
  });

  it('pipelined requests in one buffer are decoded once; the same buffer with new bytes after doneWith() is decoded afresh', () => {
    const heads: string[] = [];
    const parser = new RequestParser(LIMITS, {
      onHead: (h) => heads.push(`${h.target} ${JSON.stringify(h.rawHeaders)}`),
      onBody: () => {},
      onComplete: () => {},
    });
    // One buffer object, read into again with new bytes (as a reused read buffer would be).
    const pair = (a: string, b: string) =>
      `GET /${a} HTTP/1.1\r\nHost: h\r\nX: ${a}\r\n\r\nGET /${b} HTTP/1.1\r\nHost: h\r\nX: ${b}\r\n\r\n`;
    const buf = Buffer.from(pair('a', 'b'), 'latin1');
    const read = (): void => {
      let off = 0;
      while (off < buf.length) off = parser.execute(buf, off);
      parser.doneWith();
    };
    read();
    buf.write(pair('c', 'd'), 'latin1');
    read();
    assert.deepEqual(heads, [
      '/a ["Host","h","X","a"]',
      '/b ["Host","h","X","b"]',
      '/c ["Host","h","X","c"]',
      '/d ["Host","h","X","d"]',
    ]);
  });

  it('gives the same events fed one byte at a time', () => {
    for (const text of [...VALID, ...INVALID]) {
      const bytes = latin1(text);
      const single = [...bytes].map((b) => Buffer.from([b]));
      assert.deepEqual(events(single), events([bytes]), JSON.stringify(text));
    }
  });

  it('property: any partition of a pipeline of requests parses identically', () => {
    const message = fc.constantFrom(...VALID, ...INVALID);
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (messages, cuts) => {
          const bytes = latin1(messages.join(''));
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const pieces: Buffer[] = [];
          let from = 0;
          for (const p of points) {
            pieces.push(bytes.subarray(from, p));
            from = p;
          }
          pieces.push(bytes.subarray(from));
          assert.deepEqual(events(pieces), events([bytes]));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: arbitrary bytes never throw anything but a ParseError, whatever the split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (arr, cut) => {
        const bytes = Buffer.from(arr);
        const i = cut % (bytes.length + 1);
        assert.deepEqual(events([bytes.subarray(0, i), bytes.subarray(i)]), events([bytes]));
      }),
      { numRuns: 1000 },
    );
  });

  /** What the parser says to `text` fed alone, with nothing after it: 'wait' when it wants more. */
  function unfinished(text: string): string {
    const parser = new RequestParser(LIMITS, { onHead() {}, onBody() {}, onComplete() {} });
    try {
      parser.execute(latin1(text));
      return 'wait';
    } catch (err) {
      if (!(err instanceof ParseError)) throw err;
      return String(err.status);
    }
  }

  it('refuses a line as soon as it cannot become valid, without waiting for its LF', () => {
    const cases: Array<[string, string]> = [
      ['GET / HTTP/1.1\rHost', '400'], // bare CR ends the request line
      ['GET / HTTP/1.1\r\nHost: h\rX: y', '400'], // bare CR in the header section
      ['GET / HTTP/1.1\r\nHost: h\r\r', '400'],
      ['\r\r', '400'],
      ['G\x00T', '400'],
      [' GET', '400'],
      ['GET /a\x7f', '400'],
      ['GET / HTTX', '400'],
      ['GET / HTTP/1.1x', '400'],
      ['GET / HTTP/1.1 ', '400'],
      ['GET / HTTP/1.1\r\nX A', '400'],
      ['GET / HTTP/1.1\r\nX :', '400'],
      ['GET / HTTP/1.1\r\n folded', '400'],
      ['GET / HTTP/1.1\r\nX-A: a\x01', '400'],
      ['POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\x00', '400'],
      [`GET /${'a'.repeat(LIMITS.maxRequestTarget + 1)}`, '414'],
      // Prefixes of valid lines wait for the rest.
      ['\r', 'wait'],
      ['GET', 'wait'],
      ['GET / HTTP/1.1\r', 'wait'],
      ['GET / HTTP/2', 'wait'], // 505 or 400: only the whole version tells
      ['GET / HTTP/1.1\r\nHost: h\r', 'wait'],
      ['GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xe9 \t', 'wait'],
    ];
    for (const [text, expected] of cases) assert.equal(unfinished(text), expected, JSON.stringify(text));
  });

  it('CONNECT: 400 unless its target is authority-form (host:port), then 501', () => {
    const status = (target: string) => unfinished(`CONNECT ${target} HTTP/1.1\r\nHost: h\r\n\r\n`);
    for (const target of ['/path', 'example.com', 'http://example.com/', '*', 'user@h:443', 'h:44x', ':443', '[::1]']) {
      assert.equal(status(target), '400', target);
    }
    for (const target of ['example.com:443', '127.0.0.1:8080', '[::1]:443'])
      assert.equal(status(target), '501', target);
  });

  it('reports the head, the body and the end of a pipelined message in order, stopping after each message', () => {
    const bytes = latin1(VALID[0]! + VALID[2]!);
    const parser = new RequestParser(LIMITS, { onHead() {}, onBody() {}, onComplete() {} });
    const first = parser.execute(bytes, 0);
    assert.equal(first, VALID[0]!.length, 'stops at the end of the first message');
    assert.equal(parser.idle, true);
    assert.equal(parser.execute(bytes, first), bytes.length);
  });
});
