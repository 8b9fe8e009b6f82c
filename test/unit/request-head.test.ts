/** The request-head rules on their own: each rule, its one home, its answers. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpError } from '../../src/errors.js';
import {
  checkHost,
  isAuthorityForm,
  keepsAlive,
  noteConnection,
  repeatedFieldError,
  settleFraming,
  targetForm,
  TargetForm,
  type HeadFields,
} from '../../src/request-head.js';

/** The status (and whether the connection closes) that `fn` refuses with. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return `${err.status}${err.closeConnection ? ' close' : ''}`;
  }
  return 'accepted';
}

const fields = (f: Partial<HeadFields>): HeadFields => ({
  http11: true,
  hasHost: true,
  contentLength: undefined,
  transferEncoding: undefined,
  expect: undefined,
  ...f,
});

describe('request-head rules', () => {
  it('target forms: origin, absolute http(s), * for OPTIONS only, CONNECT refused (RFC 9112 §3.2)', () => {
    assert.equal(targetForm('GET', '/a?b'), TargetForm.Origin);
    assert.equal(targetForm('GET', 'http://h/x'), TargetForm.Absolute);
    assert.equal(targetForm('GET', 'HTTPS://h'), TargetForm.Absolute);
    assert.equal(targetForm('OPTIONS', '*'), TargetForm.Asterisk);
    assert.equal(
      refusal(() => targetForm('GET', '*')),
      '400',
    );
    for (const target of ['h:443', 'ftp://h/x', 'nonsense', ''])
      assert.equal(
        refusal(() => targetForm('GET', target)),
        '400',
        target,
      );
    assert.equal(
      refusal(() => targetForm('CONNECT', 'h:443')),
      '501 close',
    );
    assert.equal(
      refusal(() => targetForm('CONNECT', '/path')),
      '400 close',
    );
  });

  it('authority-form is host:port with the port given', () => {
    for (const t of ['h:1', '127.0.0.1:80', '[::1]:443']) assert.equal(isAuthorityForm(t), true, t);
    for (const t of ['h', 'h:', ':1', '[::1]', 'u@h:1', '/p:1']) assert.equal(isAuthorityForm(t), false, t);
  });

  it('Host must be host[:port]; a refusal closes the connection', () => {
    for (const v of ['h', '', 'h:8080', '[::1]:1', 'a.b-c'])
      assert.equal(
        refusal(() => checkHost(v)),
        'accepted',
        v,
      );
    for (const v of ['u@h', 'h/p', 'a,b', 'a b', 'h:x', '[::1'])
      assert.equal(
        refusal(() => checkHost(v)),
        '400 close',
        v,
      );
  });

  it('a repeated Host or Content-Length closes the connection, a repeated Content-Type does not', () => {
    assert.equal(repeatedFieldError('Host').closeConnection, true);
    assert.equal(repeatedFieldError('Content-Length').closeConnection, true);
    assert.equal(repeatedFieldError('Content-Type').closeConnection, false);
  });

  it('framing: chunked XOR Content-Length, Host on HTTP/1.1, Expect 100-continue only (RFC 9112 §6)', () => {
    const settle = (f: Partial<HeadFields>) => () => settleFraming(fields(f), 1000);
    assert.deepEqual(settleFraming(fields({}), 1000), { bodyLength: 0, expectContinue: false });
    assert.deepEqual(settleFraming(fields({ contentLength: '12' }), 1000), { bodyLength: 12, expectContinue: false });
    assert.deepEqual(settleFraming(fields({ transferEncoding: 'chunked' }), 1000), {
      bodyLength: null,
      expectContinue: false,
    });
    assert.deepEqual(settleFraming(fields({ contentLength: '5', expect: '100-Continue' }), 1000), {
      bodyLength: 5,
      expectContinue: true,
    });
    assert.deepEqual(settleFraming(fields({ expect: '100-continue' }), 1000), { bodyLength: 0, expectContinue: false });
    assert.deepEqual(settleFraming(fields({ http11: false, hasHost: false, expect: 'x' }), 1000), {
      bodyLength: 0,
      expectContinue: false,
    });
    assert.equal(refusal(settle({ hasHost: false })), '400 close');
    assert.equal(refusal(settle({ contentLength: '5', transferEncoding: 'chunked' })), '400 close');
    assert.equal(refusal(settle({ http11: false, transferEncoding: 'chunked' })), '400 close');
    assert.equal(refusal(settle({ transferEncoding: 'gzip' })), '400 close');
    assert.equal(refusal(settle({ transferEncoding: 'gzip, chunked' })), '501 close');
    assert.equal(refusal(settle({ contentLength: '1x' })), '400 close');
    assert.equal(refusal(settle({ contentLength: '1001' })), '413 close');
    assert.equal(refusal(settle({ expect: 'something' })), '417');
  });

  it('persistence: HTTP/1.1 unless close, HTTP/1.0 only with keep-alive (RFC 9112 §9.3)', () => {
    const options = (value: string) => {
      const o = { close: false, keepAlive: false };
      noteConnection(value, o);
      return o;
    };
    assert.equal(keepsAlive(true, options('')), true);
    assert.equal(keepsAlive(true, options('Upgrade, CLOSE')), false);
    assert.equal(keepsAlive(false, options('')), false);
    assert.equal(keepsAlive(false, options('keep-alive')), true);
    assert.equal(keepsAlive(false, options('x, Keep-Alive')), true);
  });
});
