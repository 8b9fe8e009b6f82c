/** What middleware needs to handle a body it passes on: watch it without changing it, or iterate it itself. */

import type { Body, Bytes } from '../types.js';
import { isThenable } from '../thenable.js';

export interface BodyWatch {
  /** Each chunk, as the server takes it. */
  chunk?: (chunk: Bytes) => void;
  /** Once, when the server closes the body (after the original's own close()). */
  closed?: () => void | PromiseLike<void>;
}

/**
 * True for something a server would accept as a body. Middleware passes anything else on untouched,
 * so the server reports the app's mistake in its own words.
 */
export function isBody(v: unknown): v is Body {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    !(v instanceof Uint8Array) &&
    (typeof (v as Iterable<Bytes>)[Symbol.iterator] === 'function' ||
      typeof (v as AsyncIterable<Bytes>)[Symbol.asyncIterator] === 'function')
  );
}

/**
 * The same body, watched: chunks pass through unchanged and in the same blocks, sync stays sync and
 * an Array stays an Array (so the server still knows its length), and `closed` runs when the server
 * calls close().
 */
export function watchBody(body: Body, watch: BodyWatch): Body {
  if (!isBody(body)) return body;
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
          return: async (v?: unknown) =>
            typeof it.return === 'function' ? it.return(v) : { done: true as const, value: undefined },
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
        return: (v?: unknown) =>
          typeof it.return === 'function' ? it.return(v) : { done: true as const, value: undefined },
      };
    },
    close,
  };
}

const closedBodies = new WeakSet<object>();

/** Calls a body's close() if it has one, once, whichever path gets there first. */
export async function closeBody(body: Body): Promise<void> {
  if (closedBodies.has(body)) return;
  closedBodies.add(body);
  if (typeof body.close === 'function') await body.close();
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
    await closeBody(body);
  }
}

/**
 * A generator over `source` as a body for the server. Its close() ends the generator (running its
 * `finally`) and closes `source` too: a generator closed before its first step never runs its
 * body, so without this a response dropped before iteration would leave the app's body unclosed.
 */
export function closable(gen: AsyncGenerator<Bytes, void, undefined>, source: Body): Body {
  let started = false;
  return {
    [Symbol.asyncIterator]: () => {
      started = true;
      return gen;
    },
    close: async () => {
      if (started) await gen.return(undefined);
      await closeBody(source);
    },
  };
}
