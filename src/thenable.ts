/** Apps may answer now or with a promise; these keep the synchronous case synchronous. */

export function isThenable<T = unknown>(v: unknown): v is PromiseLike<T> {
  return (
    v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<T>).then === 'function'
  );
}

/** `fn(value)` now for a plain value, or once a promise of one settles. */
export function thenOrNow<T, R>(value: T | PromiseLike<T>, fn: (v: T) => R): R | Promise<R> {
  return isThenable<T>(value) ? Promise.resolve(value).then(fn) : fn(value);
}
