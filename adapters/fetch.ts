/**
 * Bridges to the Fetch API (`nsgi/fetch`): an nsgi app as a `(request) => Response | Promise<Response>` handler
 * for any Fetch-style host, and a Fetch handler (a Hono app's `fetch`, say) as an nsgi app. Bodies
 * stream both ways with backpressure; aborts travel through `request.signal` and `nsgi.signal`.
 */

import { CLOSE_LINGER_MS } from '../src/host.js';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { pullFrom } from './node-exchange.js';
import { RequestAbort } from '../src/abort.js';
import type { RequestInfo } from '../src/environ.js';
import { ClientDisconnectedError } from '../src/errors.js';
import { Gateway, type Framing, type GatewayOptions, type ResponseSink } from '../src/gateway.js';
import type { BodySource } from '../src/input.js';
import { HOP_BY_HOP } from '../src/response-head.js';
import { encodeScriptName } from '../src/script-name.js';
import type { App, AppLike, Body, Bytes, Environ, ResponseHeaders, StartResponse } from '../src/types.js';
import { thenOrNow } from '../src/thenable.js';
import { EnvironRequest, installStandIns, NO_BODY_METHODS, realRequest, responseParts } from './fetch-objects.js';
import { relativeTarget } from '../src/uri.js';

export interface FetchHandlerOptions extends GatewayOptions {
  /** The URL path prefix the app is mounted at (SCRIPT_NAME). Default `''`. */
  scriptName?: string | undefined;
  /**
   * The client's address and port, from whatever the host passes after the request. Default: the
   * Node request of hosts that pass `{ incoming }` (as `@hono/node-server` does), else none.
   */
  connection?:
    | ((request: Request, ...extra: unknown[]) => { remoteAddress?: string; remotePort?: number } | undefined)
    | undefined;
}

/** A Fetch-style handler, as Hono, Deno.serve and Bun take it: a ready Response or a promise of one. */
export type FetchHandler = (request: Request, ...extra: unknown[]) => Response | Promise<Response>;

/** Response bytes queued for the host before the app is asked to wait. */
const QUEUE_BYTES = 64 * 1024;

function nodeConnection(
  _request: Request,
  ...extra: unknown[]
): { remoteAddress?: string; remotePort?: number } | undefined {
  const socket = (extra[0] as { incoming?: { socket?: { remoteAddress?: string; remotePort?: number } } } | undefined)
    ?.incoming?.socket;
  return socket === undefined ? undefined : { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
}

/** The path and query of an absolute URL string, as written. */
function targetOf(href: string): string {
  const slash = href.indexOf('/', href.indexOf('//') + 2);
  return slash === -1 ? '/' : href.slice(slash);
}

/** Node's request and response, which `@hono/node-server` passes after the Request. */
interface NodePair {
  incoming?: { rawHeaders?: string[]; httpVersion?: string; socket?: { remoteAddress?: string; remotePort?: number } };
  outgoing?: { once(event: 'close', fn: () => void): unknown; writableFinished?: boolean };
}

/**
 * The response headers as a Response takes them: a plain record when no name repeats (hosts such as
 * `@hono/node-server` send a record without building Headers), else pairs, which keep repeated
 * fields (Set-Cookie) apart. `close`: the core wants the connection closed (a refused request, a body
 * left unread), which a Response can only say with the field itself; node-based hosts honour it.
 */
function headersInit(headers: ResponseHeaders, close: boolean): Record<string, string> | Array<[string, string]> {
  // A plain object literal: names on Object.prototype only ever send a list of pairs instead.
  const record: Record<string, string> = {};
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i]![0].toLowerCase();
    if (record[name] !== undefined) {
      const pairs: Array<[string, string]> = headers.slice();
      if (close) pairs.push(['connection', 'close']);
      return pairs;
    }
    record[name] = headers[i]![1];
  }
  if (close) record.connection = 'close';
  return record;
}

/**
 * One request through the core, answered as a Response. The Response is made when the first body
 * bytes (or the end) arrive, so a response known whole at once goes as one buffer — the host's fast
 * path — and only a streamed one gets a ReadableStream.
 */
class FetchExchange extends RequestAbort implements BodySource, ResponseSink {
  readonly #request: Request;
  readonly #pair: NodePair | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #resolve: ((response: Response) => void) | undefined;
  /** The answer, when it came before anyone waited for it. */
  #response: Response | undefined;
  #init: ResponseInit | undefined;
  #noBody = false;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #pulled: (() => void) | undefined;
  #answered = false;

  constructor(request: Request, pair: NodePair | undefined) {
    super();
    this.#request = request;
    this.#pair = pair;
  }

  #answer(response: Response): void {
    if (this.#resolve !== undefined) this.#resolve(response);
    else this.#response = response;
  }

  /**
   * The Response now when the app answered synchronously — hosts send a ready Response without a
   * turn through the promise machinery — else a promise of it.
   */
  response(): Response | Promise<Response> {
    return this.#response ?? new Promise((resolve) => (this.#resolve = resolve));
  }

  /** Watched only once the exchange goes asynchronous: reading request.signal has a cost of its own. */
  protected override startWatching(): void {
    const outgoing = this.#pair?.outgoing;
    if (outgoing !== undefined && typeof outgoing.once === 'function') {
      outgoing.once('close', () => {
        if (!outgoing.writableFinished) this.abort(new ClientDisconnectedError());
      });
      return;
    }
    const signal = this.#request.signal;
    if (signal.aborted) this.abort(new ClientDisconnectedError());
    else signal.addEventListener('abort', () => this.abort(new ClientDisconnectedError()), { once: true });
  }

  // BodySource
  async next(): Promise<Bytes | null> {
    // Straight from Node's request when the host passes it: no ReadableStream in between.
    const incoming = this.#pair?.incoming;
    if (
      this.#reader === undefined &&
      incoming !== undefined &&
      typeof (incoming as { read?: unknown }).read === 'function'
    ) {
      return pullFrom(incoming as unknown as IncomingMessage);
    }
    this.#reader ??= this.#request.body?.getReader();
    if (this.#reader === undefined) return null;
    try {
      const { done, value } = await this.#reader.read();
      return done ? null : value;
    } catch {
      throw new ClientDisconnectedError();
    }
  }

  cancel(): void {
    void this.#reader?.cancel().catch(() => {});
  }

  // ResponseSink
  head(code: number, reason: string, headers: ResponseHeaders, framing: Framing): void {
    this.#init = { status: code, statusText: reason, headers: headersInit(headers, framing.close) };
    this.#noBody = framing.noBody;
  }

  /** Answers with a streamed body, made at the first write. */
  #stream(): ReadableStreamDefaultController<Uint8Array> | undefined {
    if (this.#controller !== undefined || this.#answered) return this.#controller;
    this.#answered = true;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => void (this.#controller = controller),
        pull: () => {
          const resume = this.#pulled;
          this.#pulled = undefined;
          resume?.();
        },
        // The host stopped reading (its client went away): the app's body is ended and closed.
        cancel: () => this.abort(new ClientDisconnectedError()),
      },
      { highWaterMark: QUEUE_BYTES, size: (chunk) => chunk.byteLength },
    );
    this.#answer(new Response(body, this.#init));
    return this.#controller;
  }

  write(chunk: Bytes): boolean {
    if (this.#noBody) return true;
    const c = this.#stream();
    if (c === undefined) return true;
    // A copy: the app may reuse its buffer once write() has resolved, and the host reads later.
    c.enqueue(chunk.slice());
    return (c.desiredSize ?? 0) > 0;
  }

  drain(): Promise<void> {
    const c = this.#controller;
    if (c === undefined || (c.desiredSize ?? 0) > 0 || this.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#pulled;
      this.#pulled = () => {
        previous?.();
        resolve();
      };
      this.onAbort(() => this.#pulled?.());
    });
  }

  end(_reuse: boolean, last?: Bytes): void {
    if (!this.#answered) {
      // The whole response at once: one buffer, no stream.
      this.#answered = true;
      this.#answer(
        new Response(this.#noBody || last === undefined || last.length === 0 ? null : last.slice(), this.#init),
      );
      return;
    }
    if (last !== undefined && last.length > 0) this.write(last);
    try {
      this.#controller?.close();
    } catch {
      // already cancelled by the host
    }
  }

  abortResponse(): void {
    if (!this.#answered) {
      if (this.#init === undefined || this.#noBody) {
        this.#answered = true;
        this.#answer(new Response(null, this.#init ?? { status: 500, statusText: 'Internal Server Error' }));
        return;
      }
      // Headers were committed: they go out, with a body that fails, so the host cuts it short.
      this.#stream();
    }
    const c = this.#controller;
    if (c === undefined) return;
    // What was written reaches the client first (erroring a stream drops its queue), then the
    // stream fails and the host cuts the response short. A host that stops reading is not waited for.
    const deadline = Date.now() + CLOSE_LINGER_MS;
    const fail = (): void => {
      if ((c.desiredSize ?? 0) < QUEUE_BYTES && Date.now() < deadline && !this.aborted) {
        setTimeout(fail, 5);
        return;
      }
      try {
        c.error(new ClientDisconnectedError('the response was aborted'));
      } catch {
        // already closed or cancelled
      }
    };
    fail();
  }
}

/** Wraps an app as a Fetch handler: `(request) => Response | Promise<Response>` (a ready Response when the app answers at once). */
export function toFetchHandler(app: AppLike, options: FetchHandlerOptions = {}): FetchHandler {
  const gateway = new Gateway(app, options);
  const scriptName = encodeScriptName(options.scriptName);
  const connection = options.connection ?? nodeConnection;
  return (request, ...extra) => {
    const href = request.url;
    // Scheme, host and port from the string: a URL object per request costs more than the rest.
    const hostStart = href.indexOf('//') + 2;
    const pathStart = href.indexOf('/', hostStart);
    const authority = href.slice(hostStart, pathStart === -1 ? undefined : pathStart);
    const portSep = authority.lastIndexOf(':');
    const hasPort = portSep !== -1 && authority.charCodeAt(authority.length - 1) !== 0x5d; // ']'
    let hostname = hasPort ? authority.slice(0, portSep) : authority;
    if (hostname.charCodeAt(0) === 0x5b) hostname = hostname.slice(1, -1); // an IPv6 literal's brackets
    const https = hostStart === 8; // "https://"
    const pair = extra[0] as NodePair | undefined;
    const exchange = new FetchExchange(request, pair);
    let rawHeaders: string[] = [];
    let host = false;
    // Node's request, when the host passes it, has the header lines as received: case, order and
    // repeats kept, and no Request to build from them.
    const nodeHeaders = pair?.incoming?.rawHeaders;
    if (Array.isArray(nodeHeaders)) {
      rawHeaders = nodeHeaders;
      for (let i = 0; i < nodeHeaders.length && !host; i += 2)
        host = nodeHeaders[i]!.length === 4 && nodeHeaders[i]!.toLowerCase() === 'host';
      if (!host) rawHeaders = [...nodeHeaders];
    } else
      for (const [name, value] of request.headers) {
        if (name === 'host') {
          host = true;
          // Fetch joins repeated fields with ", "; a Host never contains a comma, so this was two
          // Host lines, which the core must see to refuse them.
          for (const part of value.split(', ')) rawHeaders.push(name, part);
          continue;
        }
        rawHeaders.push(name, value);
      }
    // A Request need not carry Host; its URL always names one.
    if (!host) rawHeaders.push('host', authority);
    // A body with no declared length (a stream made in-process) is read to its end.
    const unframed =
      !Array.isArray(nodeHeaders) &&
      !NO_BODY_METHODS.has(request.method) &&
      request.body !== null &&
      !request.headers.has('content-length') &&
      !request.headers.has('transfer-encoding');
    const peer = connection(request, ...extra);
    const info: RequestInfo = {
      method: request.method,
      // From the URL as serialized, not url.search: that drops an empty query ("/?" stays "/?").
      target: targetOf(href),
      httpVersion: pair?.incoming?.httpVersion === '1.0' ? '1.0' : '1.1',
      rawHeaders,
      remoteAddress: peer?.remoteAddress,
      remotePort: peer?.remotePort,
      localAddress: hostname,
      localPort: hasPort ? Number(authority.slice(portSep + 1)) : https ? 443 : 80,
      tls: https,
      scriptName,
      path: undefined,
      errors: undefined,
      framing: undefined,
      streamed: unframed,
      body: exchange,
      abort: exchange,
      sendContinue: undefined,
    };
    gateway.dispatch(info, exchange);
    return exchange.response();
  };
}

/** The URL the Fetch handler gets: scheme and host, then the target below the mount (see relativeTarget). */
function fetchUrl(environ: Environ): string {
  const host =
    typeof environ.HTTP_HOST === 'string' && environ.HTTP_HOST !== ''
      ? environ.HTTP_HOST
      : `${environ.SERVER_NAME}:${environ.SERVER_PORT}`;
  return `${environ['wsgi.url_scheme']}://${host}${relativeTarget(environ)}`;
}

export interface FromFetchOptions {
  /**
   * Hand the handler a Request stand-in made from the environ, and make `globalThis.Response` a
   * stand-in that keeps a string or byte body as given until the body is used, so the bridge sends
   * it without a body stream (as `@hono/node-server` does). Both pass `instanceof` and make the real
   * object on first use of what they do not hold; `globalThis.Request` and `fetch` are replaced by
   * the built-ins taking the Request stand-in as input, so it works wherever a real one does.
   * Default `true`; `false` leaves the globals alone and hands the handler real Requests.
   */
  overrideGlobalObjects?: boolean | undefined;
}

/** A Fetch handler (`(request) => Response | Promise<Response>`) as an nsgi app. */
export function fromFetchHandler(
  fetch: (request: Request) => Response | Promise<Response>,
  options: FromFetchOptions = {},
): App {
  if (typeof fetch !== 'function')
    throw new TypeError('fromFetchHandler(fetch): give the handler function, e.g. honoApp.fetch');
  const standIns = options.overrideGlobalObjects !== false;
  if (standIns) installStandIns();
  return (environ, startResponse) => {
    if (standIns) installStandIns();
    // The stand-in takes method, URL, headers and signal from the environ when asked, and the body
    // from wsgi.input; a real Request is made only for what it does not hold.
    const standIn = new EnvironRequest(environ, fetchUrl(environ)) as unknown as Request;
    const request = standIns ? standIn : realRequest(standIn);
    return thenOrNow(fetch(request), (response) => respond(response, startResponse));
  };
}

/** Starts the nsgi response from a Fetch Response and returns its body. */
function respond(response: Response, startResponse: StartResponse): Body {
  // Any Fetch implementation's Response will do (undici's package, a polyfill), not only the global's.
  const r = response as Partial<Response> | null | undefined;
  if (r === null || typeof r !== 'object' || typeof r.status !== 'number' || typeof r.headers?.get !== 'function') {
    throw new TypeError(
      `fromFetchHandler: the handler must return (or resolve to) a Response, got ${r === null ? 'null' : typeof r}`,
    );
  }
  const parts = responseParts(response);
  const out: ResponseHeaders = [];
  for (const pair of parts.headers) if (!HOP_BY_HOP.has(pair[0])) out.push(pair);
  startResponse(`${parts.status} ${parts.statusText || STATUS_CODES[parts.status] || 'Unknown'}`, out);
  // A body held as given goes as it is: no Response stream to read it through.
  if (parts.bytes !== undefined) return parts.bytes === null ? [] : [parts.bytes];
  const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
  if (reader === undefined) return [];
  let finished = false;
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          finished = true;
          return;
        }
        yield value;
      }
    },
    close: async () => {
      if (!finished) await reader.cancel().catch(() => {});
    },
  };
}
