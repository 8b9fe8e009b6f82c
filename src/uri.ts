/** URL reconstruction (PEP 3333 "URL Reconstruction"), percent-encoding native strings byte for byte. */

import { quoteNativePath } from './native.js';
import type { Environ } from './types.js';

/** The URL of the app's root: scheme, host and SCRIPT_NAME. */
export function applicationUri(environ: Environ): string {
  const scheme = environ['wsgi.url_scheme'];
  let url = scheme + '://';
  const host = environ.HTTP_HOST;
  if (typeof host === 'string' && host !== '') {
    url += host;
  } else {
    url += environ.SERVER_NAME;
    const port = environ.SERVER_PORT;
    if ((scheme === 'https' && port !== '443') || (scheme === 'http' && port !== '80')) url += ':' + port;
  }
  return url + quoteNativePath(environ.SCRIPT_NAME || '/');
}

/** The full request URL: applicationUri + PATH_INFO + the query string. */
export function requestUri(environ: Environ, includeQuery = true): string {
  const pathInfo = quoteNativePath(environ.PATH_INFO ?? '');
  // applicationUri ends in '/' for a root app, which PATH_INFO's own leading '/' replaces.
  let url = applicationUri(environ) + (environ.SCRIPT_NAME ? pathInfo : pathInfo.slice(1));
  if (includeQuery && environ.QUERY_STRING) url += '?' + environ.QUERY_STRING;
  return url;
}

/** The path of an origin-form request-target: everything before the query. */
export function targetPath(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * The request-target a sub-app below SCRIPT_NAME sees: at the root, REQUEST_URI exactly as received
 * (fragment removed); under a mount, PATH_INFO re-encoded and the query as received (how a bridge
 * hands a request on to a host that has no SCRIPT_NAME).
 */
export function relativeTarget(environ: Environ): string {
  const target = environ.REQUEST_URI;
  if (environ.SCRIPT_NAME === '' && typeof target === 'string' && target.startsWith('/')) {
    const hash = target.indexOf('#');
    return hash === -1 ? target : target.slice(0, hash);
  }
  const path = quoteNativePath(environ.PATH_INFO || '/');
  return environ.QUERY_STRING ? `${path}?${environ.QUERY_STRING}` : path;
}
