/** What every section of the conformance suite works with: one host's server and the suite's helpers. */

import assert from 'node:assert/strict';
import { it as nodeIt } from 'node:test';
import type { App, AppLike, Environ } from '../../src/types.js';
import { h2Request } from '../helpers/h2-http.js';
import { rawRequest, type RawExchange, type RawOptions } from '../helpers/raw-http.js';
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
  /**
   * The protocol the cases' requests go over: HTTP/1.1 as written (default), or each request of
   * the text as an HTTP/2 stream (SPEC §17), TLS when the host's handle says so.
   */
  protocol?: 'HTTP/1.1' | 'HTTP/2.0' | undefined;
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
  /** Sends request text to the server on `port` over the suite's protocol; rawRequest()'s answer. */
  send: (port: number, data: string | Buffer | Array<string | Buffer>, opts?: RawOptions) => Promise<RawExchange>;
  /** SERVER_PROTOCOL of the suite's requests. */
  version: 'HTTP/1.1' | 'HTTP/2.0';
  /** wsgi.url_scheme of the suite's requests. */
  scheme: () => 'http' | 'https';
  /** The suite's requests go over HTTP/2 (SPEC §17). */
  h2: boolean;
  /**
   * The response was cut short, as the protocol says it: HTTP/1.1 closes the connection, HTTP/2
   * resets the stream (SPEC §17.2).
   */
  cutShort: (r: RawExchange) => boolean;
  /** A reason phrase as it arrives: HTTP/2 carries none (SPEC §17.2). */
  reason: (phrase: string) => string;
  /** A header name as it arrives: HTTP/2 sends names in lower case. */
  name: (name: string) => string;
}

/** The context for one host: its factory, its mount, and the cases it cannot carry. */
export function suiteContext(factory: ServerFactory, suite: SuiteOptions): SuiteContext {
  const P = suite.mount;
  const version = suite.protocol ?? 'HTTP/1.1';
  const known = new Set<string>();
  /** Whether the server on a port speaks TLS, for the HTTP/2 transport. */
  const tlsByPort = new Map<number, boolean>();
  let lastTls = false;
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
    tlsByPort.set(server.port, server.tls === true);
    lastTls = server.tls === true;
    try {
      await fn(server.port, log);
    } finally {
      tlsByPort.delete(server.port);
      await server.close();
    }
  }

  const send = (port: number, data: string | Buffer | Array<string | Buffer>, opts?: RawOptions) =>
    version === 'HTTP/2.0'
      ? h2Request({ port, tls: tlsByPort.get(port) === true }, data, opts)
      : rawRequest(port, data, opts);

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
        const r = await send(port, reqText);
        assert.equal(r.responses[0]?.status, 200, r.text);
        env = seen[0];
      },
      extra,
    );
    return env!;
  }

  const get = (path: string, headers = '') => `GET ${P}${path} HTTP/1.1\r\nHost: test.local\r\n${headers}\r\n`;
  const h2 = version === 'HTTP/2.0';
  return {
    P,
    it,
    withServer,
    probe,
    environFor,
    get,
    send,
    version,
    scheme: () => (lastTls ? 'https' : 'http'),
    h2,
    cutShort: (r) => (h2 ? r.truncated : r.closed),
    reason: (phrase) => (h2 ? '' : phrase),
    name: (name) => (h2 ? name.toLowerCase() : name),
  };
}
