/** Waiting for a writable to take more bytes, shared by every sink that writes to a Node stream. */

import type { Writable } from 'node:stream';

/** Resolves once `w` has drained its buffer, or at once if it is not full; also when it closes. */
export function drained(w: Writable): Promise<void> {
  if (!w.writableNeedDrain || w.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}
