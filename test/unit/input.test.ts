import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientDisconnectedError, RequestBodyTooLargeError } from '../../src/errors.js';
import { RequestInput, type BodySource } from '../../src/input.js';

/** A source that hands out the given chunks, then ends (or fails). */
function source(chunks: string[], end: 'eof' | 'disconnect' = 'eof'): BodySource & { pulls: number } {
  const queue = chunks.map((c) => Buffer.from(c));
  const s = {
    pulls: 0,
    next(): Promise<Buffer | null> {
      s.pulls++;
      const c = queue.shift();
      if (c !== undefined) return Promise.resolve(c);
      return end === 'eof' ? Promise.resolve(null) : Promise.reject(new ClientDisconnectedError());
    },
  };
  return s;
}

const str = (b: Uint8Array) => Buffer.from(b).toString();
const input = (chunks: string[], limit = Infinity, end: 'eof' | 'disconnect' = 'eof') =>
  new RequestInput(source(chunks, end), { maxBodySize: limit });

describe('RequestInput', () => {
  it('read(n) spans chunks and returns exactly n bytes until the end', async () => {
    const i = input(['ab', 'cde', 'f']);
    assert.equal(str(await i.read(4)), 'abcd');
    assert.equal(str(await i.read(0)), '');
    assert.equal(str(await i.read(10)), 'ef');
    assert.equal(str(await i.read(10)), '');
    assert.equal(str(await i.read()), '');
  });

  it('read() with no size, null or a negative size reads to the end', async () => {
    for (const size of [undefined, null, -1]) {
      const i = input(['ab', 'cd']);
      assert.equal(str(await i.read(size)), 'abcd');
    }
  });

  it('rejects a size that is not an integer', async () => {
    await assert.rejects(input(['x']).read(1.5), /size must be an integer/);
  });

  it('readline splits across chunk boundaries and honours a size', async () => {
    const i = input(['a', 'b\nc', 'd\n', 'tail']);
    assert.equal(str(await i.readline()), 'ab\n');
    assert.equal(str(await i.readline(1)), 'c');
    assert.equal(str(await i.readline()), 'd\n');
    assert.equal(str(await i.readline()), 'tail');
    assert.equal(str(await i.readline()), '');
  });

  it('readlines(hint) stops once the hint is reached; iteration yields lines', async () => {
    const i = input(['a\nb\nc\nd\n']);
    assert.deepEqual((await i.readlines(3)).map(str), ['a\n', 'b\n']);
    const lines: string[] = [];
    for await (const l of i) lines.push(str(l));
    assert.deepEqual(lines, ['c\n', 'd\n']);
  });

  it('rejects every read after a disconnect, never returning a short body as complete', async () => {
    const i = input(['12345'], Infinity, 'disconnect');
    await assert.rejects(i.read(), ClientDisconnectedError);
    await assert.rejects(i.read(1), ClientDisconnectedError);
  });

  it('enforces the size limit on the bytes actually received', async () => {
    const i = input(['12345', '6'], 5);
    await assert.rejects(i.read(), RequestBodyTooLargeError);
    await assert.rejects(i.readline(), RequestBodyTooLargeError);
    const ok = input(['12345'], 5);
    assert.equal(str(await ok.read()), '12345');
  });

  it('calls onFirstRead once, before the first pull, and not at all if never read', async () => {
    let calls = 0;
    const src = source(['x']);
    const i = new RequestInput(src, { maxBodySize: 10, onFirstRead: () => calls++ });
    assert.equal(calls, 0);
    assert.equal(i.started, false);
    await Promise.all([i.read(1), i.read(1)]);
    assert.equal(calls, 1);
    assert.equal(i.started, true);
    assert.equal(i.complete, true);
  });

  it('with a declared length, ends once that many bytes arrived without asking the transport again', async () => {
    const src = source(['12', '345']);
    const i = new RequestInput(src, { maxBodySize: 100, length: 5 });
    assert.equal(str(await i.read()), '12345');
    assert.equal(src.pulls, 2);
    assert.equal(i.complete, true);
    assert.equal(str(await i.read()), '');
    assert.equal(src.pulls, 2);
  });

  it('a transport whose body ends short of the declared length is an error, not a short complete body', async () => {
    const i = new RequestInput(source(['12', '3']), { maxBodySize: 100, length: 5 });
    await assert.rejects(
      i.read(),
      (err: unknown) => err instanceof ClientDisconnectedError && /ended after 3 of 5 bytes/.test(err.message),
    );
    await assert.rejects(i.read(), ClientDisconnectedError);
  });

  it('concurrent reads never interleave bytes', async () => {
    const i = input(['abc', 'def', 'ghi']);
    const [a, b] = await Promise.all([i.read(4), i.read(4)]);
    assert.deepEqual([str(a), str(b)].sort(), ['abcd', 'efgh']);
  });
});
