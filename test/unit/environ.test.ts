import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildEnviron, compileEnvironOptions, type RequestInfo } from '../../src/environ.js';
import { HttpError } from '../../src/errors.js';
import { EMPTY_SOURCE } from '../../src/input.js';
import { RequestAbort } from '../../src/abort.js';
import { TextErrorStream } from '../../src/error-stream.js';
import { applicationUri, requestUri } from '../../src/uri.js';
import { VERSION } from '../../src/version.js';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { percentDecodeNative } from '../../src/native.js';

const errors = new TextErrorStream({ write() {} });
const opts = compileEnvironOptions({ errors });

function req(over: Partial<RequestInfo> = {}): RequestInfo {
  return {
    method: 'GET',
    target: '/',
    httpVersion: '1.1',
    rawHeaders: ['Host', 'example.com'],
    remoteAddress: '::ffff:10.0.0.5',
    remotePort: 50000,
    localAddress: '::ffff:127.0.0.1',
    localPort: 8080,
    tls: false,
    body: EMPTY_SOURCE,
    abort: new RequestAbort(),
    ...over,
  };
}

function refused(r: Partial<RequestInfo>, status: number, o = opts): HttpError {
  try {
    buildEnviron(req(r), o);
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, status, err.message);
    return err;
  }
  assert.fail(`expected ${status}`);
}

describe('buildEnviron', () => {
  it('maps addresses: IPv4-mapped IPv6 becomes IPv4; IPv6 SERVER_NAME is bracketed', () => {
    const { environ } = buildEnviron(req(), opts);
    assert.equal(environ.REMOTE_ADDR, '10.0.0.5');
    assert.equal(environ.REMOTE_PORT, '50000');
    assert.equal(environ.SERVER_NAME, '127.0.0.1');
    assert.equal(environ.SERVER_PORT, '8080');
    assert.equal(environ.SERVER_SOFTWARE, `nsgi/${VERSION}`);
    assert.equal(environ.GATEWAY_INTERFACE, 'CGI/1.1');
    const v6 = buildEnviron(req({ localAddress: '::1' }), opts).environ;
    assert.equal(v6.SERVER_NAME, '[::1]');
  });

  it('uses configured SERVER_NAME/SERVER_PORT and scheme defaults on unix sockets', () => {
    const o = compileEnvironOptions({ errors, serverName: 'api.example', serverPort: 443 });
    const e = buildEnviron(req(), o).environ;
    assert.equal(e.SERVER_NAME, 'api.example');
    assert.equal(e.SERVER_PORT, '443');
    const unix = buildEnviron(req({ localAddress: undefined, localPort: undefined, tls: true }), opts).environ;
    assert.equal(unix.SERVER_NAME, 'localhost');
    assert.equal(unix.SERVER_PORT, '443');
    assert.throws(() => compileEnvironOptions({ errors, serverPort: 'http' }), /serverPort must be digits/);
  });

  it('absolute-form takes path and query from the target and HTTP_HOST from its authority', () => {
    const e = buildEnviron(
      req({ target: 'http://h.example:8080/p%20q?x=1', rawHeaders: ['Host', 'other'] }),
      opts,
    ).environ;
    assert.equal(e.PATH_INFO, '/p q');
    assert.equal(e.QUERY_STRING, 'x=1');
    assert.equal(e.HTTP_HOST, 'h.example:8080');
    assert.equal(e.REQUEST_URI, 'http://h.example:8080/p%20q?x=1');
    assert.equal(buildEnviron(req({ target: 'http://h' }), opts).environ.PATH_INFO, '/');
  });

  it('asterisk-form is OPTIONS only; CONNECT is not implemented; garbage targets are 400', () => {
    const e = buildEnviron(req({ method: 'OPTIONS', target: '*' }), opts).environ;
    assert.equal(e.PATH_INFO, '*');
    assert.equal(e.SCRIPT_NAME, '');
    refused({ target: '*' }, 400);
    refused({ method: 'CONNECT', target: 'h:443' }, 501);
    refused({ method: 'CONNECT', target: '[::1]:443' }, 501);
    for (const target of ['/path', 'h', 'http://h/', 'user@h:443']) refused({ method: 'CONNECT', target }, 400);
    refused({ target: 'nonsense' }, 400);
    refused({ target: 'ftp://h/x' }, 400);
  });

  it('Host must be host[:port]: userinfo, a path, a list, whitespace or a bad port is 400 and closes', () => {
    for (const host of ['user@h', 'h/p', 'a,b', 'a, b', 'a b', 'h:8x', 'h:-1', '[::1', '[zz]', 'caf\xe9', 'h\t:80']) {
      assert.throws(
        () => buildEnviron(req({ rawHeaders: ['Host', host] }), opts),
        (err: unknown) => err instanceof HttpError && err.status === 400 && err.closeConnection,
        JSON.stringify(host),
      );
    }
    for (const host of ['h', 'h:80', 'h:', '127.0.0.1:8080', '[::1]:443', '[v1.x]', 'a-b.example', '%41']) {
      assert.equal(buildEnviron(req({ rawHeaders: ['Host', host] }), opts).environ.HTTP_HOST, host);
    }
    // The authority of an absolute-form target stands in for Host and obeys the same rule.
    refused({ target: 'http://user@h/' }, 400);
  });

  it('splits any origin-form target into path and query as the plain rule does, short or long', () => {
    // The rule: drop a fragment, split at the first '?', percent-decode the path byte for byte.
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', '/', '?', '#', '%', '2', 'F', 'é'), { maxLength: 150 }), (chars) => {
        const target = '/' + chars.join('');
        const t = target.split('#')[0]!;
        const q = t.indexOf('?');
        const e = buildEnviron(req({ target }), opts).environ;
        assert.equal(e.PATH_INFO, percentDecodeNative(q === -1 ? t : t.slice(0, q)));
        assert.equal(e.QUERY_STRING, q === -1 ? '' : t.slice(q + 1));
        assert.equal(e.REQUEST_URI, target);
      }),
      { numRuns: 2000 },
    );
  });

  it('trims only SP and HTAB around header values, keeping bytes of the value such as 0xA0', () => {
    const e = buildEnviron(
      req({ rawHeaders: ['Host', 'h', 'X-A', ' \tv a\t ', 'X-B', '\xa0b\xa0', 'X-C', ' ', 'X-D', ''] }),
      opts,
    ).environ;
    assert.equal(e.HTTP_X_A, 'v a');
    assert.equal(e.HTTP_X_B, '\xa0b\xa0');
    assert.equal(e.HTTP_X_C, '');
    assert.equal(e.HTTP_X_D, '');
    assert.deepEqual(e['nsgi.raw_headers'][1], ['X-A', ' \tv a\t ']);
  });

  it('keeps the method case and checks the request-target length', () => {
    assert.equal(buildEnviron(req({ method: 'patch' }), opts).environ.REQUEST_METHOD, 'patch');
    refused({ target: '/' + 'a'.repeat(9000) }, 414);
  });

  it('framing: CL digits only, CL+TE refused, TE chunked only, 413 above the limit, 417 for unknown Expect', () => {
    refused({ rawHeaders: ['Host', 'h', 'Content-Length', '12a'] }, 400);
    refused({ rawHeaders: ['Host', 'h', 'Content-Length', '1', 'content-length', '1'] }, 400);
    refused({ rawHeaders: ['Host', 'h', 'Content-Length', '1', 'Transfer-Encoding', 'chunked'] }, 400);
    refused({ rawHeaders: ['Host', 'h', 'Transfer-Encoding', 'gzip, chunked'] }, 501);
    refused({ rawHeaders: ['Host', 'h', 'Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'] }, 400);
    refused({ rawHeaders: ['Host', 'h', 'Transfer-Encoding', 'chunked'], httpVersion: '1.0' }, 400);
    refused({ rawHeaders: ['Host', 'h', 'Content-Length', '99999999999999999999'] }, 413);
    const small = compileEnvironOptions({ errors, maxBodySize: 10 });
    const e413 = refused({ rawHeaders: ['Host', 'h', 'Content-Length', '11'] }, 413, small);
    assert.equal(e413.closeConnection, true);
    refused({ rawHeaders: ['Host', 'h', 'Expect', 'magic'] }, 417);
    const chunked = buildEnviron(req({ rawHeaders: ['Host', 'h', 'Transfer-Encoding', 'Chunked'] }), opts);
    assert.equal(chunked.bodyLength, null);
    assert.ok(!('HTTP_TRANSFER_ENCODING' in chunked.environ));
    const asked = { rawHeaders: ['Host', 'h', 'Content-Length', '3', 'Expect', '100-Continue'] };
    const cont = buildEnviron(req({ ...asked, sendContinue: () => {} }), opts);
    assert.equal(cont.expectsContinue, true);
    assert.equal(cont.environ.HTTP_EXPECT, '100-Continue');
    // A host that sent 100 Continue itself (or cannot) leaves nothing for the core to wait on.
    assert.equal(buildEnviron(req(asked), opts).expectsContinue, false);
    const old = buildEnviron(
      req({ httpVersion: '1.0', rawHeaders: ['Content-Length', '3', 'Expect', 'whatever'] }),
      opts,
    );
    assert.equal(old.expectsContinue, false, 'HTTP/1.0 expectations are ignored');
  });

  it('header names: every spelling is one key, repeats join or are refused, whatever came before', () => {
    const env = (raw: string[]) => buildEnviron(req({ rawHeaders: raw }), opts).environ;
    const a = env(['Host', 'h', 'Accept', 'a', 'accept', 'b', 'Cookie', 'x=1', 'COOKIE', 'y=2', 'X-Custom', ' v ']);
    assert.equal(a.HTTP_ACCEPT, 'a, b');
    assert.equal(a.HTTP_COOKIE, 'x=1; y=2');
    assert.equal(a.HTTP_X_CUSTOM, 'v');
    // The same names in another order, then the first request again: nothing carries over.
    const b = env(['x-custom', 'w', 'Host', 'h', 'ACCEPT', 'c']);
    assert.equal(b.HTTP_ACCEPT, 'c');
    assert.equal(b.HTTP_X_CUSTOM, 'w');
    assert.ok(!('HTTP_COOKIE' in b));
    assert.equal(
      env(['Host', 'h', 'Accept', 'a', 'accept', 'b', 'Cookie', 'x=1', 'COOKIE', 'y=2']).HTTP_ACCEPT,
      'a, b',
    );
    refused({ rawHeaders: ['Host', 'h', 'HOST', 'h'] }, 400);
    refused({ rawHeaders: ['Host', 'h', 'Content-Type', 'a', 'content-TYPE', 'b'] }, 400);
    refused({ rawHeaders: ['Host', 'h', 'content-length', '1', 'Content-Length', '1'] }, 400);
    assert.ok(!('HTTP_X_UNDER_SCORE' in env(['Host', 'h', 'X-Under_Score', 'v'])));
  });

  it('stays exact past the header-name caches (thousands of distinct names)', () => {
    for (let i = 0; i < 2100; i++) {
      const e = buildEnviron(
        req({ rawHeaders: ['Host', 'h', `X-Probe-${i}`, 'a', `x-probe-${i}`, 'b'] }),
        opts,
      ).environ;
      assert.equal(e[`HTTP_X_PROBE_${i}`], 'a, b');
    }
    // Past the caches, a repeated rule-carrying header is still seen, in any spelling.
    refused({ rawHeaders: ['hOST', 'h', 'HoSt', 'h'] }, 400);
    refused({ rawHeaders: ['Host', 'h', 'cONTENT-lENGTH', '1', 'CoNtEnT-LeNgTh', '2'] }, 400);
    const late = buildEnviron(req({ rawHeaders: ['Host', 'h', 'X-Late-One', 'a', 'x-late-one', 'b'] }), opts).environ;
    assert.equal(late.HTTP_X_LATE_ONE, 'a, b');
  });

  it('HTTP/1.0 needs no Host; HTTP/1.1 does', () => {
    assert.equal(buildEnviron(req({ httpVersion: '1.0', rawHeaders: [] }), opts).environ.SERVER_PROTOCOL, 'HTTP/1.0');
    refused({ rawHeaders: [] }, 400);
  });

  it('trusted proxies: hop-aware X-Forwarded-For and X-Forwarded-Proto', () => {
    const o = compileEnvironOptions({ errors, trustProxy: ['10.0.0.0/8'] });
    const e = buildEnviron(
      req({ rawHeaders: ['Host', 'h', 'X-Forwarded-For', '198.51.100.7, 10.1.1.1', 'X-Forwarded-Proto', 'https'] }),
      o,
    ).environ;
    assert.equal(e.REMOTE_ADDR, '198.51.100.7');
    assert.equal(e.REMOTE_PORT, undefined);
    assert.equal(e['wsgi.url_scheme'], 'https');
    const spoofed = buildEnviron(
      req({
        remoteAddress: '203.0.113.1',
        rawHeaders: ['Host', 'h', 'X-Forwarded-For', '1.2.3.4', 'X-Forwarded-Proto', 'https'],
      }),
      o,
    ).environ;
    assert.equal(spoofed.REMOTE_ADDR, '203.0.113.1');
    assert.equal(spoofed['wsgi.url_scheme'], 'http');
    const hops = compileEnvironOptions({ errors, trustProxy: 1 });
    assert.equal(
      buildEnviron(req({ rawHeaders: ['Host', 'h', 'X-Forwarded-For', '1.1.1.1, 2.2.2.2'] }), hops).environ.REMOTE_ADDR,
      '2.2.2.2',
    );
    const bogusProto = buildEnviron(req({ rawHeaders: ['Host', 'h', 'X-Forwarded-Proto', 'gopher'] }), o).environ;
    assert.equal(bogusProto['wsgi.url_scheme'], 'http');
  });

  it('trusted proxies: RFC 7239 Forwarded when no X-Forwarded-* came', () => {
    const o = compileEnvironOptions({ errors, trustProxy: ['10.0.0.0/8'] });
    const env = (forwarded: string, more: string[] = [], remoteAddress?: string) =>
      buildEnviron(
        req({ ...(remoteAddress && { remoteAddress }), rawHeaders: ['Host', 'h', 'Forwarded', forwarded, ...more] }),
        o,
      ).environ;
    const e = env('for=198.51.100.7;proto=https, for="10.1.1.1:4711";proto=http');
    assert.deepEqual([e.REMOTE_ADDR, e['wsgi.url_scheme']], ['198.51.100.7', 'https']);
    const one = env('For="[2001:db8:cafe::17]:4711";Proto=https;by=10.0.0.1');
    assert.deepEqual([one.REMOTE_ADDR, one['wsgi.url_scheme']], ['2001:db8:cafe::17', 'https']);
    assert.equal(env('for=unknown').REMOTE_ADDR, 'unknown');
    // Untrusted peer: ignored. Malformed: ignored. X-Forwarded-* present: it wins.
    assert.equal(env('for=1.2.3.4', [], '203.0.113.1').REMOTE_ADDR, '203.0.113.1');
    assert.equal(env('for=1.2.3.4;proto=https junk').REMOTE_ADDR, '10.0.0.5');
    assert.equal(env('for=1.2.3.4', ['X-Forwarded-For', '5.6.7.8']).REMOTE_ADDR, '5.6.7.8');
    assert.equal(env('for=1.2.3.4').HTTP_FORWARDED, 'for=1.2.3.4');
  });

  it('rebuilds URLs as the PEP describes, percent-encoding latin-1 bytes', () => {
    const e = buildEnviron(req({ target: '/caf%C3%A9/x%20y?q=1', scriptName: '/caf%C3%A9' }), opts).environ;
    assert.equal(applicationUri(e), 'http://example.com/caf%C3%A9');
    assert.equal(requestUri(e), 'http://example.com/caf%C3%A9/x%20y?q=1');
    const root = buildEnviron(req({ target: '/a', rawHeaders: [], httpVersion: '1.0' }), opts).environ;
    assert.equal(applicationUri(root), 'http://127.0.0.1:8080/');
    assert.equal(requestUri(root, false), 'http://127.0.0.1:8080/a');
  });

  it('HTTP/2: :authority stands for Host, under its rules (SPEC §17.1)', () => {
    const h2 = (over: Partial<RequestInfo>) => req({ httpVersion: '2.0', rawHeaders: [], ...over });
    const e = buildEnviron(h2({ authority: 'a.test:8443' }), opts).environ;
    assert.equal(e.HTTP_HOST, 'a.test:8443');
    assert.equal(e.SERVER_PROTOCOL, 'HTTP/2.0');
    assert.deepEqual(e['nsgi.raw_headers'], []);
    assert.equal(
      buildEnviron(h2({ authority: 'a.test', rawHeaders: ['host', 'a.test'] }), opts).environ.HTTP_HOST,
      'a.test',
    );
    assert.match(refused({ httpVersion: '2.0', rawHeaders: [] }, 400).message, /without a Host header/);
    assert.match(
      refused({ httpVersion: '2.0', authority: 'a.test', rawHeaders: ['host', 'b.test'] }, 400).message,
      /differs from :authority/,
    );
    for (const bad of ['user@h', 'h/p', 'h:8x', 'a b'])
      refused({ httpVersion: '2.0', authority: bad, rawHeaders: [] }, 400);
  });

  it('VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(VERSION, pkg.version);
  });
});
