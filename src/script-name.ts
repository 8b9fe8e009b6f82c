/** The mount-prefix rule every host and `mount` share: '' or a path that starts and does not end with '/'. */

import { encodeNative, quoteNativePath } from './native.js';

/** Throws a RangeError naming `what` unless `prefix` is a valid mount prefix ('' and '/' mean the root). */
export function checkMountPrefix(prefix: unknown, what: string): asserts prefix is string {
  if (prefix === '' || prefix === '/') return;
  if (typeof prefix !== 'string' || !prefix.startsWith('/') || prefix.endsWith('/')) {
    throw new RangeError(
      `${what} must be a path that starts with '/' and does not end with '/', e.g. '/app'; got ${JSON.stringify(prefix)}`,
    );
  }
}

/**
 * Validates a mount prefix and returns it percent-encoded as it appears in request targets (UTF-8
 * for non-ASCII), or undefined for the root. Escapes already in it (`/a%20b`) are kept as they are.
 */
export function encodeScriptName(scriptName: string | undefined, what = 'scriptName'): string | undefined {
  if (scriptName === undefined) return undefined;
  checkMountPrefix(scriptName, what);
  if (scriptName === '' || scriptName === '/') return undefined;
  return quoteNativePath(encodeNative(scriptName)).replace(/%25([0-9A-Fa-f]{2})/g, '%$1');
}

const SLASH = 0x2f;

/** True when `path` is `prefix` itself or lies below it: matching is on whole segments (`/app` owns `/app/x`, not `/apple`). */
export function ownsPath(prefix: string, path: string): boolean {
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === SLASH);
}
