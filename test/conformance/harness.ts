/** What the conformance suite needs from a server: start an app, tell the port, close. */

import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AppLike } from '../../src/types.js';
import type { GatewayOptions } from '../../src/gateway.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  accessLog,
  compose,
  compress,
  ipFilter,
  mount,
  proxyFix,
  router,
  staticFiles,
  validate,
  type LintError,
} from '../../src/middleware/index.js';

/** A directory with no files: staticFiles passes every request on. */
const EMPTY_DIR = mkdtempSync(join(tmpdir(), 'nsgi-empty-'));

export interface ServerHandle {
  port: number;
  close(): Promise<void>;
  /** The server speaks TLS (the HTTP/2 transport then connects with it). */
  tls?: boolean | undefined;
}

/** Options every host must honour for the suite; the mount prefix is applied the host's own way. */
export interface FactoryOptions extends Pick<
  GatewayOptions,
  'maxBodySize' | 'trustProxy' | 'errorLog' | 'onResponse' | 'websocket'
> {
  /** Mount prefix: '' (root) or e.g. '/mnt'. */
  mount: string;
}

export type ServerFactory = (app: AppLike, options: FactoryOptions) => Promise<ServerHandle>;

/** Listens on 127.0.0.1 with a free port; close() drops every connection and waits for the server. */
export async function listening(server: Server): Promise<ServerHandle> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Collects what the server logs, so tests can assert on it and the output stays quiet. */
export class LogCapture {
  lines: string[] = [];
  write(s: string): void {
    this.lines.push(s);
  }
  get text(): string {
    return this.lines.join('');
  }
  clear(): void {
    this.lines = [];
  }
}

/**
 * The factory with every app wrapped in `validate`, checking the server: a server-side violation
 * (environ, wsgi.input, startResponse, how the body is iterated and closed) fails the test when the
 * server closes. App-side ones are expected: many cases send deliberately broken apps.
 */
export function linted(factory: ServerFactory): ServerFactory {
  return async (app, options) => {
    const found: LintError[] = [];
    const handle = await factory(validate(app, { onViolation: (e) => e.side === 'server' && found.push(e) }), options);
    return {
      port: handle.port,
      close: async () => {
        await handle.close();
        // close() is due right after the response; give a late one its turn before judging.
        await new Promise((r) => setTimeout(r, 20));
        if (found.length > 0)
          throw new Error(`the server broke the interface:\n${found.map((e) => e.message).join('\n')}`);
      },
    };
  };
}

/**
 * The factory with every app behind the middleware that pass a request through unchanged when it
 * asks nothing of them (accessLog, proxyFix with no trusted peer, ipFilter allowing all, a router
 * with one catch-all route, mount with only a fallback, staticFiles falling through, compress
 * without Accept-Encoding), with
 * validate outside and inside the stack: the conformance cases must hold through them, and no
 * lint error may come from the middleware.
 */
export function throughMiddleware(factory: ServerFactory): ServerFactory {
  return async (app, options) => {
    const found: LintError[] = [];
    const hook = {
      onViolation: (e: LintError) =>
        void (e.side === 'server' || e.rule === 'body.block-boundary' ? found.push(e) : undefined),
    };
    const stack = compose(
      (a) => accessLog(a, { stream: { write() {} } }),
      (a) => proxyFix(a, { trust: ['192.0.2.1'] }),
      (a) => ipFilter(a, { allow: ['0.0.0.0/0', '::/0'] }),
      (a) => compress(a),
      (a) => router({ '/*': a }),
      (a) => mount({ '/': a }),
      (a) => staticFiles(EMPTY_DIR, { fallthrough: a }),
    );
    const handle = await factory(validate(stack(validate(app, hook)), hook), options);
    return {
      port: handle.port,
      close: async () => {
        await handle.close();
        await new Promise((r) => setTimeout(r, 20));
        if (found.length > 0)
          throw new Error(`lint errors through the middleware:\n${found.map((e) => e.message).join('\n')}`);
      },
    };
  };
}
