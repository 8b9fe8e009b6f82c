/**
 * `mount`: dispatches by path prefix to sub-apps (a URL map), moving the matched segments from
 * PATH_INFO to SCRIPT_NAME so that SCRIPT_NAME + PATH_INFO still spells the request path.
 */

import { toApp } from '../app-forms.js';
import { encodeNative } from '../native.js';
import { checkMountPrefix, ownsPath } from '../script-name.js';
import type { App, AppLike } from '../types.js';
import { plainText } from './plain-text.js';

/** Answers 404 Not Found in plain text. */
export const notFound: App = plainText('404 Not Found', 'Not Found\n');

/**
 * `routes` maps path prefixes (`'/dog'`, `'/api/v1'`; Unicode allowed) to apps; `'/'` or `''` is the
 * fallback for everything else (default: 404). Matching is on whole segments: `/dog` takes `/dog`,
 * `/dog/` and `/dog/x`, never `/doghouse`; the longest prefix wins.
 */
export function mount(routes: Readonly<Record<string, AppLike>>): App {
  let fallback: App = notFound;
  const table: Array<[prefix: string, app: App]> = [];
  for (const [key, app] of Object.entries(routes)) {
    if (key === '' || key === '/') {
      fallback = toApp(app);
      continue;
    }
    checkMountPrefix(key, 'a mount() prefix');
    table.push([encodeNative(key), toApp(app)]);
  }
  table.sort((a, b) => b[0].length - a[0].length);

  return (environ, startResponse) => {
    const path = environ.PATH_INFO;
    for (const [prefix, app] of table) {
      if (ownsPath(prefix, path)) {
        // In place, as URL maps in WSGI do, and cheaper than a copy of some thirty keys.
        environ.SCRIPT_NAME += prefix;
        environ.PATH_INFO = path.slice(prefix.length);
        return app(environ, startResponse);
      }
    }
    return fallback(environ, startResponse);
  };
}
