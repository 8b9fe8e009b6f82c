/** `compose`: stacks middleware in reading order. */

import { toApp } from '../app-forms.js';
import type { App, AppLike } from '../types.js';

/** A middleware factory applied to an app: `(app) => App`. */
export type Wrap = (app: App) => App;

/**
 * `compose(a, b, c)(app)` is `a(b(c(app)))`: the first listed sees the request first and the
 * response last, as the list reads from top to bottom.
 */
export function compose(...wraps: Wrap[]): (app: AppLike) => App {
  wraps.forEach((w, i) => {
    if (typeof w !== 'function')
      throw new TypeError(`compose(): argument ${i} is ${typeof w}, not a function (app) => App`);
  });
  return (app) => wraps.reduceRight<App>((inner, wrap) => wrap(inner), toApp(app));
}
