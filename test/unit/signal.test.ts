import assert from 'node:assert/strict';
import { getEventListeners, once, EventEmitter } from 'node:events';
import http from 'node:http';
import { describe, it } from 'node:test';
import { Readable, addAbortSignal } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import util from 'node:util';
import { lazySignal, RequestAbort } from '../../src/abort.js';

/** A request's abort state that counts how often the real AbortSignal is asked for and watching starts. */
class CountingAbort extends RequestAbort {
  signalReads = 0;
  watchStarts = 0;
  override get signal(): AbortSignal {
    this.signalReads++;
    return super.signal;
  }
  protected override startWatching(): void {
    this.watchStarts++;
  }
}

describe('nsgi.signal stand-in (lazySignal)', () => {
  it('is an AbortSignal to instanceof, toString and inspect, without creating one', () => {
    const abort = new CountingAbort();
    const signal = lazySignal(abort);
    assert.ok(signal instanceof AbortSignal);
    assert.ok(signal instanceof EventTarget);
    assert.equal(Object.prototype.toString.call(signal), '[object AbortSignal]');
    assert.equal(util.inspect(signal), 'AbortSignal { aborted: false }');
    assert.equal(signal.aborted, false);
    assert.equal(signal.reason, undefined);
    assert.ok('aborted' in signal);
    assert.equal(abort.signalReads, 0, 'nothing above needs the real signal');
    assert.equal(abort.watchStarts, 1, 'reading aborted starts watching the connection');
  });

  it('is copied by a spread of the environ without creating the signal', () => {
    const abort = new CountingAbort();
    const environ = { PATH_INFO: '/', 'nsgi.signal': lazySignal(abort) };
    const copy = { ...environ, PATH_INFO: '/x' };
    assert.equal(copy['nsgi.signal'], environ['nsgi.signal']);
    assert.equal(abort.signalReads, 0);
  });

  it('reports an abort: aborted, reason, listeners, onabort and throwIfAborted', () => {
    const abort = new CountingAbort();
    const signal = lazySignal(abort);
    const events: Event[] = [];
    signal.addEventListener('abort', (e) => events.push(e));
    assert.equal(getEventListeners(signal, 'abort').length, 1);
    let onabort = 0;
    signal.onabort = () => onabort++;
    assert.doesNotThrow(() => signal.throwIfAborted());
    const reason = new Error('client gone');
    abort.abort(reason);
    abort.abort(new Error('second'));
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, reason);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, 'abort');
    assert.equal(onabort, 1);
    assert.throws(
      () => signal.throwIfAborted(),
      (err) => err === reason,
    );
    assert.equal(util.inspect(signal), 'AbortSignal { aborted: true }');
  });

  it('created after the abort, the real signal is already aborted with the same reason', () => {
    const abort = new CountingAbort();
    const signal = lazySignal(abort);
    const reason = new Error('early');
    abort.abort(reason);
    assert.throws(
      () => signal.throwIfAborted(),
      (err) => err === reason,
    );
    assert.equal(abort.signal.aborted, true);
  });

  it('works where Node takes an AbortSignal: AbortSignal.any, events.once, timers, streams, Request', async () => {
    const abort = new CountingAbort();
    const signal = lazySignal(abort);
    const any = AbortSignal.any([signal]);
    const request = new Request('http://127.0.0.1/', { signal });
    const waiting = once(new EventEmitter(), 'never', { signal });
    const sleeping = sleep(60_000, 'late', { signal });
    const stream = addAbortSignal(signal, new Readable({ read() {} }));
    stream.on('error', () => {});
    assert.equal(await sleep(1, 'on time', { signal }), 'on time');
    abort.abort(new Error('gone'));
    assert.equal(any.aborted, true);
    assert.equal(request.signal.aborted, true);
    await assert.rejects(waiting, { name: 'AbortError' });
    await assert.rejects(sleeping, { name: 'AbortError' });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stream.destroyed, true);
  });

  it('can be given to fetch()', async () => {
    const server = http.createServer((_req, res) => res.end('hi'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${port}/`, { signal: lazySignal(new RequestAbort()) });
      assert.equal(await response.text(), 'hi');
      const abort = new RequestAbort();
      abort.abort(new Error('gone before the request'));
      await assert.rejects(
        fetch(`http://127.0.0.1:${port}/`, { signal: lazySignal(abort) }),
        /gone before the request/,
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('keeps properties set on it, on the real signal', () => {
    const abort = new RequestAbort();
    const signal = lazySignal(abort) as AbortSignal & { tag?: string };
    signal.tag = 'x';
    assert.equal(signal.tag, 'x');
    assert.equal((abort.signal as AbortSignal & { tag?: string }).tag, 'x');
    assert.ok(Object.keys(signal).includes('tag'));
    assert.throws(() => Object.setPrototypeOf(signal, null), TypeError);
  });
});
