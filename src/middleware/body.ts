/** What middleware needs to handle a body it passes on: watch it without changing it, or iterate it itself. */

import type { Body, Bytes } from '../types.js';

export interface BodyWatch {
  /** Each chunk, as the server takes it. */
  chunk?(chunk: Bytes): void;
  /** Once, when the server closes the body (after the original's own close()). */
  closed?(): void | PromiseLike<void>;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as PromiseLike<unknown>).then === 'function';
}

/**
 * The same body, watched: chunks pass through unchanged and in the same blocks, sync stays sync and
 * an Array stays an Array (so the server still knows its length), and `closed` runs when the server
 * calls close().
 */
export function watchBody(body: Body, watch: BodyWatch): Body {
  let done = false;
  const close = (): void | PromiseLike<void> => {
    if (done) return undefined;
    done = true;
    const own = typeof body.close === 'function' ? body.close() : undefined;
    if (isThenable(own)) return Promise.resolve(own).finally(() => watch.closed?.());
    return watch.closed?.();
  };
  if (Array.isArray(body)) {
    const copy = (body as Bytes[]).slice() as Bytes[] & { close(): void | PromiseLike<void> };
    if (watch.chunk) for (const c of copy) if (c instanceof Uint8Array) watch.chunk(c);
    copy.close = close;
    return copy;
  }
  const onChunk = watch.chunk;
  const pass = (r: IteratorResult<Bytes>): IteratorResult<Bytes> => {
    if (!r.done && onChunk !== undefined && r.value instanceof Uint8Array) onChunk(r.value);
    return r;
  };
  if (typeof (body as AsyncIterable<Bytes>)[Symbol.asyncIterator] === 'function') {
    return {
      [Symbol.asyncIterator]() {
        const it = (body as AsyncIterable<Bytes>)[Symbol.asyncIterator]();
        return {
          next: async () => pass(await it.next()),
          return: async (v?: unknown) => (typeof it.return === 'function' ? it.return(v as Bytes) : { done: true as const, value: undefined }),
        };
      },
      close,
    };
  }
  return {
    [Symbol.iterator]() {
      const it = (body as Iterable<Bytes>)[Symbol.iterator]();
      return {
        next: () => pass(it.next()),
        return: (v?: unknown) => (typeof it.return === 'function' ? it.return(v as Bytes) : { done: true as const, value: undefined }),
      };
    },
    close,
  };
}

/**
 * Iterates a body as a server would (sync or async), yielding its chunks, and closes it exactly once
 * when the iteration ends, however it ends: for middleware that transforms the chunks itself.
 */
export async function* relay(body: Body): AsyncGenerator<Bytes, void, undefined> {
  try {
    if (typeof (body as AsyncIterable<Bytes>)[Symbol.asyncIterator] === 'function') yield* body as AsyncIterable<Bytes>;
    else yield* body as Iterable<Bytes>;
  } finally {
    if (typeof body.close === 'function') await body.close();
  }
}

/** A generator as a body whose close() ends it (running its `finally`), for the server to call once. */
export function closable(gen: AsyncGenerator<Bytes, void, undefined>): Body {
  return {
    [Symbol.asyncIterator]: () => gen,
    close: async () => {
      await gen.return(undefined);
    },
  };
}
