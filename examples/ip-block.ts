/**
 * The tutorial's IP-blocking middleware: only listed client addresses get through, everyone else
 * gets 403 Forbidden. It reads REMOTE_ADDR (the peer address the server saw), not the Host header,
 * and compares normalised addresses, so '::ffff:127.0.0.1' and '127.0.0.1' are the same client.
 * It is written in the object form of an app: an instance with a call(environ, startResponse) method.
 *   nsgi serve examples/ip-block.ts
 */
import ipaddr from 'ipaddr.js';
import { toApp, type App, type AppLike, type Body, type Environ, type StartResponse } from '../src/index.js';

const FORBIDDEN = Buffer.from('Forbidden');

/** Canonical text form of an address, or undefined when it is not one. */
function normalise(addr: string): string | undefined {
  return ipaddr.isValid(addr) ? ipaddr.process(addr).toString() : undefined;
}

export class IPAllowlistMiddleware {
  readonly #app: App;
  readonly #allowed: Set<string>;

  constructor(app: AppLike, allowed: readonly string[] = ['127.0.0.1', '::1']) {
    this.#app = toApp(app);
    this.#allowed = new Set(
      allowed.map((a) => {
        const n = normalise(a);
        if (n === undefined) throw new RangeError(`IPAllowlistMiddleware: ${JSON.stringify(a)} is not an IP address`);
        return n;
      }),
    );
  }

  call(environ: Environ, startResponse: StartResponse): Body | PromiseLike<Body> {
    const addr = environ.REMOTE_ADDR === undefined ? undefined : normalise(environ.REMOTE_ADDR);
    if (addr === undefined || !this.#allowed.has(addr)) return forbidden(startResponse);
    return this.#app(environ, startResponse);
  }
}

export function forbidden(startResponse: StartResponse): Body {
  startResponse('403 Forbidden', [['Content-Type', 'text/plain']]);
  return [FORBIDDEN];
}

export const application: App = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return [Buffer.from('This is an nsgi application!')];
};

export const app = new IPAllowlistMiddleware(application);
export default app;
