/** What every section of the conformance suite works with: one host's server and the suite's helpers. */

import assert from 'node:assert/strict';
import { it as nodeIt } from 'node:test';
import type { App, AppLike, Environ } from '../../src/types.js';
import { rawRequest } from '../helpers/raw-http.js';
import { LogCapture, type FactoryOptions, type ServerFactory, type ServerHandle } from './harness.js';

export const b = (s: string) => Buffer.from(s, 'latin1');

/** The CGI keys (no dot) of an environ: what should be identical across hosts. */
export function cgi(environ: Environ): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(environ)) if (!k.includes('.')) out[k] = v as string;
  return out;
}

export const text = (environ: Environ) => JSON.stringify(cgi(environ));

export interface SuiteOptions {
  /** Mount prefix the host is configured with: '' or e.g. '/mnt'. */
  mount: string;
  /**
   * Cases the host cannot carry, by slug (`environ.fragment`), with the reason: what reaches the app
   * through it has lost what the case checks (the Fetch API's URL has no fragment, for one).
   */
  cannot?: Readonly<Record<string, string>> | undefined;
}

export interface SuiteContext {
  /** The mount prefix, '' at the root. */
  P: string;
  /** A case with a stable slug (`section.name`); skipped, with the host's reason, when the host cannot carry it. */
  it: (slug: string, title: string, fn: () => Promise<void>) => void;
  /** Starts a server for `app`, runs `fn`, always closes. */
  withServer: (
    app: AppLike,
    fn: (port: number, log: LogCapture) => Promise<void>,
    extra?: Partial<FactoryOptions>,
  ) => Promise<void>;
  /** An app that records each environ and answers 200 with the CGI keys as JSON. */
  probe: () => { app: App; seen: Environ[] };
  /** GET (or another request) through a raw socket; returns the environ the app saw. */
  environFor: (reqText: string, extra?: Partial<FactoryOptions>) => Promise<Environ>;
  /** A GET of `path` below the mount, as raw request text. */
  get: (path: string, headers?: string) => string;
}

/** The context for one host: its factory, its mount, and the cases it cannot carry. */
export function suiteContext(factory: ServerFactory, suite: SuiteOptions): SuiteContext {
  const P = suite.mount;
  const known = new Set<string>();
  const it = (slug: string, title: string, fn: () => Promise<void>): void => {
    if (known.has(slug)) throw new Error(`conformance: two cases are called ${slug}`);
    known.add(slug);
    const reason = suite.cannot?.[slug];
    if (reason === undefined) void nodeIt(`${slug}: ${title}`, fn);
    else void nodeIt.skip(`${slug}: ${title} (not carried by this host: ${reason})`, fn);
  };

  async function withServer(
    app: AppLike,
    fn: (port: number, log: LogCapture) => Promise<void>,
    extra: Partial<FactoryOptions> = {},
  ): Promise<void> {
    const log = new LogCapture();
    const server: ServerHandle = await factory(app, { mount: P, errorLog: log, ...extra });
    try {
      await fn(server.port, log);
    } finally {
      await server.close();
    }
  }

  function probe() {
    const seen: Environ[] = [];
    const app: App = (environ, startResponse) => {
      seen.push(environ);
      startResponse('200 OK', [['Content-Type', 'application/json']]);
      return [Buffer.from(text(environ), 'latin1')];
    };
    return { app, seen };
  }

  async function environFor(reqText: string, extra: Partial<FactoryOptions> = {}): Promise<Environ> {
    const { app, seen } = probe();
    let env: Environ | undefined;
    await withServer(
      app,
      async (port) => {
        const r = await rawRequest(port, reqText);
        assert.equal(r.responses[0]?.status, 200, r.text);
        env = seen[0];
      },
      extra,
    );
    return env!;
  }

  const get = (path: string, headers = '') => `GET ${P}${path} HTTP/1.1\r\nHost: test.local\r\n${headers}\r\n`;
  return { P, it, withServer, probe, environFor, get };
}
