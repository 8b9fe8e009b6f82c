/** The three callable forms of an app (function, class, object with call()) reduced to one function. */

import { InterfaceError } from './errors.js';
import type { App, AppClass, AppLike, AppObject } from './types.js';

const CLASS_SOURCE = /^class[\s{]/;

function isClass(fn: App | AppClass): fn is AppClass {
  return CLASS_SOURCE.test(Function.prototype.toString.call(fn));
}

/** Explains why `value` is not an app, or returns undefined when it is one. */
export function whyNotApp(value: unknown): string | undefined {
  if (typeof value === 'function') return undefined;
  if (value !== null && typeof value === 'object' && typeof (value as AppObject).call === 'function') return undefined;
  const what =
    value === null || value === undefined
      ? String(value)
      : Array.isArray(value)
        ? 'an array'
        : typeof value === 'object'
          ? 'an object without a call() method'
          : `a ${typeof value}`;
  return (
    `${what} is not an nsgi app: give a function (environ, startResponse) => body, ` +
    `a class whose instances are the body, or an object with a call(environ, startResponse) method`
  );
}

/** Normalises any app form to the function form. Throws InterfaceError for anything else. */
export function toApp(app: AppLike): App {
  const why = whyNotApp(app);
  if (why !== undefined) throw new InterfaceError('ERR_NSGI_NOT_AN_APP', why);
  if (typeof app === 'function') {
    if (isClass(app)) {
      const Cls = app;
      return (environ, startResponse) => new Cls(environ, startResponse);
    }
    return app;
  }
  const obj = app;
  return (environ, startResponse) => obj.call(environ, startResponse);
}
