/**
 * `router`: dispatch on method and path. Patterns are matched segment by segment against PATH_INFO;
 * `:name` takes one segment, a final `*` takes the rest. The parameters go in `environ['nsgi.route']`.
 * A path no pattern matches is 404; a path matched only for other methods is 405 with `Allow`; HEAD
 * is served by the GET route, which sees a GET (REQUEST_METHOD is rewritten, `nsgi.route.head` set) and
 * whose body is not sent: the route runs until it has started the response, then its body is closed.
 */

import { toApp } from '../app-forms.js';
import type { App, AppLike, Body, Bytes, Environ, StartResponse } from '../types.js';
import { closable, isBody, relay } from './body.js';
import { notFound } from './mount.js';
import { plainText } from './plain-text.js';
import { TOKEN_RE } from '../response-head.js';
import { thenOrNow } from '../thenable.js';

/** What `environ['nsgi.route']` holds: the pattern that matched and its parameters. */
export interface RouteMatch {
  /** The route's key, e.g. `'GET /users/:id'`. */
  route: string;
  /** `{ id: '42' }`; a final `*` is under `'*'`. Values are PATH_INFO text (decoded, native strings). */
  params: Record<string, string>;
  /** True when a HEAD request is answered by this GET route: the app sees REQUEST_METHOD 'GET'. */
  head?: boolean;
}

export interface RouterOptions {
  /** Answers paths no route matches. Default: a plain 404. */
  notFound?: AppLike | undefined;
}

interface Route {
  key: string;
  /** Methods this route serves; null for any. */
  methods: Set<string> | null;
  segments: string[];
  /** The last segment is `*`. */
  rest: boolean;
  app: App;
}

function parseRoute(key: string, app: AppLike): Route {
  const space = key.indexOf(' ');
  const methodPart = space === -1 ? '' : key.slice(0, space);
  const pattern = space === -1 ? key : key.slice(space + 1).trim();
  const methods = methodPart === '' || methodPart === '*' ? null : new Set(methodPart.split('|'));
  for (const m of methods ?? []) {
    if (!TOKEN_RE.test(m))
      throw new RangeError(
        `router: ${JSON.stringify(key)}: ${JSON.stringify(m)} is not a method; write routes as 'GET /path' or 'GET|POST /path'`,
      );
  }
  if (!pattern.startsWith('/'))
    throw new RangeError(`router: ${JSON.stringify(key)}: the path pattern must start with '/', e.g. 'GET /users/:id'`);
  const segments = pattern.split('/').slice(1);
  const rest = segments[segments.length - 1] === '*';
  if (rest) segments.pop();
  segments.forEach((s, i) => {
    if (s === '*') throw new RangeError(`router: ${JSON.stringify(key)}: '*' may only be the last segment`);
    if (s.startsWith(':') && s.length === 1)
      throw new RangeError(`router: ${JSON.stringify(key)}: parameter ${i + 1} has no name`);
  });
  return { key, methods, segments, rest, app: toApp(app) };
}

function match(route: Route, parts: string[]): Record<string, string> | undefined {
  const { segments, rest } = route;
  if (rest ? parts.length < segments.length : parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const p = parts[i]!;
    if (s.startsWith(':')) {
      if (p === '') return undefined;
      params[s.slice(1)] = p;
    } else if (s !== p) {
      return undefined;
    }
  }
  if (rest) params['*'] = parts.slice(segments.length).join('/');
  return params;
}

/**
 * The GET route's answer to a HEAD request: its status and headers, no body. The route's body is
 * pulled only until it has called startResponse (apps that start in their first iteration), then closed.
 */
function headOf(app: App, environ: Environ, startResponse: StartResponse): Body | PromiseLike<Body> {
  let started = false;
  const sr: StartResponse = (status, headers, excInfo) => {
    started = true;
    return startResponse(status, headers, excInfo);
  };
  const finish = (body: Body): Body => {
    if (!isBody(body)) return body;
    if (started) {
      const close = typeof body.close === 'function' ? () => body.close!() : undefined;
      return Object.assign([] as Bytes[], { close });
    }
    return closable(
      (async function* () {
        // Empty chunks, one per chunk pulled, until the route has started its response.
        for await (const _ of relay(body)) {
          yield new Uint8Array(0);
          if (started) return;
        }
      })(),
      body,
    );
  };
  return thenOrNow(app(environ, sr), finish);
}

/**
 * `routes` maps `'METHOD /pattern'` (or `'GET|POST /pattern'`, or a bare `'/pattern'` for every
 * method) to apps; the first matching route in the order given wins.
 */
export function router(routes: Readonly<Record<string, AppLike>>, options: RouterOptions = {}): App {
  const table = Object.entries(routes).map(([key, app]) => parseRoute(key, app));
  const fallback = options.notFound === undefined ? notFound : toApp(options.notFound);
  return (environ, startResponse) => {
    const parts = (environ.PATH_INFO || '/').split('/').slice(1);
    const method = environ.REQUEST_METHOD;
    const allowed = new Set<string>();
    let getRoute: { route: Route; params: Record<string, string> } | undefined;
    for (const route of table) {
      const params = match(route, parts);
      if (params === undefined) continue;
      if (route.methods === null || route.methods.has(method)) {
        environ['nsgi.route'] = { route: route.key, params } satisfies RouteMatch;
        return route.app(environ, startResponse);
      }
      for (const m of route.methods) allowed.add(m);
      if (method === 'HEAD' && getRoute === undefined && route.methods.has('GET')) getRoute = { route, params };
    }
    if (getRoute !== undefined) {
      environ['nsgi.route'] = { route: getRoute.route.key, params: getRoute.params, head: true } satisfies RouteMatch;
      // The route answers the GET it was written for; the router leaves out the body.
      environ.REQUEST_METHOD = 'GET';
      return headOf(getRoute.route.app, environ, startResponse);
    }
    if (allowed.size === 0) return fallback(environ, startResponse);
    if (allowed.has('GET')) allowed.add('HEAD');
    return plainText('405 Method Not Allowed', `Method Not Allowed: ${method} is not allowed here\n`, [
      ['Allow', [...allowed].sort().join(', ')],
    ])(environ, startResponse);
  };
}
