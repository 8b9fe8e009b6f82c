/**
 * node:http / node:https adapter: `http.createServer(toNodeListener(app))`.
 * Turns an IncomingMessage into the core's request description and a ServerResponse into its sink.
 */

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import { Gateway, type GatewayOptions } from '../src/gateway.js';
import { ALPN_H2_H1, H2Host } from '../src/http2.js';
import { encodeScriptName } from '../src/script-name.js';
import type { AppLike } from '../src/types.js';
import type { Duplex } from 'node:stream';
import { describeNodeRequest, NodeExchange, upgradeResponse } from './node-exchange.js';

export interface NodeListenerOptions extends GatewayOptions {
  /**
   * The URL path prefix the app is mounted at, e.g. `'/app'`: it becomes SCRIPT_NAME, the rest of the
   * path PATH_INFO, and requests outside it get 404. Default `''` (the app owns every path).
   */
  scriptName?: string | undefined;
}

/** A `(req, res)` listener, plus the handler for `server.on('checkContinue', ...)`. */
export interface NodeListener {
  (req: IncomingMessage, res: ServerResponse): void;
  /**
   * Register as `server.on('checkContinue', listener.checkContinue)` so `100 Continue` is sent only
   * when the app first reads `wsgi.input`. Without it Node answers `100 Continue` at once.
   */
  checkContinue: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Register as `server.on('upgrade', listener.upgrade)` so WebSocket handshakes reach the app with
   * `nsgi.websocket` (SPEC §16); createNodeServer does. Other upgrades are answered by the app in HTTP.
   */
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly gateway: Gateway;
}

/** Wraps an app as a node:http / node:https request listener. */
export function toNodeListener(app: AppLike, options: NodeListenerOptions = {}): NodeListener {
  const gateway = new Gateway(app, options);
  const scriptName = encodeScriptName(options.scriptName);

  // Each listener calls the core itself: a helper shared by the two is one call more per request.
  const listener = ((req: IncomingMessage, res: ServerResponse) => {
    const exchange = new NodeExchange(req, res);
    gateway.dispatch(describeNodeRequest(req, exchange, req.url ?? '/', scriptName), exchange);
  }) as NodeListener;
  listener.checkContinue = (req, res) => {
    const exchange = new NodeExchange(req, res);
    const info = describeNodeRequest(req, exchange, req.url ?? '/', scriptName);
    info.sendContinue = () => res.writeContinue();
    gateway.dispatch(info, exchange);
  };
  listener.upgrade = (req, socket, head) => listener(req, upgradeResponse(req, socket, head));
  Object.defineProperty(listener, 'gateway', { value: gateway });
  return listener;
}

export interface NodeServerOptions extends NodeListenerOptions {
  /** TLS options (key, cert, ...): when given, an https server is created (h2 too with `http2`). */
  https?: https.ServerOptions | undefined;
  /** PEM key and certificate: the same as `https: { key, cert }`. */
  key?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  /** Options passed to http.createServer. */
  http?: http.ServerOptions | undefined;
  /**
   * Serve HTTP/2 through node:http2 (SPEC §17): with TLS, h2 and HTTP/1.1 on one port, chosen by
   * ALPN (a tls.Server); without, h2c with prior knowledge only, for a proxy that speaks it (an
   * http2.Http2Server). Default false.
   */
  http2?: boolean | undefined;
  /** HTTP/2 settings and limits for node:http2 (`http2.createServer` options). */
  http2Options?: http2.ServerOptions | undefined;
}

/** The server createNodeServer() makes, with its gateway (for `gateway.closeWebSockets(grace)` on shutdown). */
export type NodeServer = (http.Server | https.Server) & { readonly gateway: Gateway };
/** The server createNodeServer() makes with `http2: true`: TLS with ALPN, or h2c. */
export type NodeH2Server = (tls.Server | http2.Http2Server) & { readonly gateway: Gateway };

/** How long an idle HTTP/2 session stays open, as node:http's keep-alive default. */
const H2_IDLE_TIMEOUT = 5_000;

/**
 * Creates an http (or https) server serving `app`, with `100 Continue` sent on the app's first read
 * and WebSocket handshakes offered to the app; with `http2`, a server that speaks HTTP/2 too. On
 * close() open HTTP/2 sessions get GOAWAY; `server.close()` does not close WebSockets: call
 * `server.gateway.closeWebSockets(grace)` first.
 */
export function createNodeServer(app: AppLike, options: NodeServerOptions & { http2: true }): NodeH2Server;
export function createNodeServer(app: AppLike, options?: NodeServerOptions & { http2?: false | undefined }): NodeServer;
export function createNodeServer(app: AppLike, options?: NodeServerOptions): NodeServer | NodeH2Server;
export function createNodeServer(app: AppLike, options: NodeServerOptions = {}): NodeServer | NodeH2Server {
  const listener = toNodeListener(app, options);
  const tlsOptions = tlsOf(options);
  let server: http.Server | https.Server | tls.Server | http2.Http2Server;
  if (options.http2 === true) {
    const h2 = new H2Host(
      listener.gateway,
      encodeScriptName(options.scriptName),
      H2_IDLE_TIMEOUT,
      options.http2Options,
    );
    if (tlsOptions === undefined) {
      server = h2.server;
      closingSessions(server, h2, undefined);
    } else {
      // HTTP/1.1 connections go to a node:http server of their own, which never listens.
      const h1 = http.createServer(options.http ?? {}, listener);
      wire(h1, listener);
      server = tls.createServer({ ...tlsOptions, ALPNProtocols: ALPN_H2_H1 }, (socket) => {
        if (socket.alpnProtocol === 'h2') h2.accept(socket);
        else h1.emit('connection', socket);
      });
      server.on('tlsClientError', () => {});
      closingSessions(server, h2, h1);
    }
  } else {
    const h1 =
      tlsOptions !== undefined
        ? https.createServer(tlsOptions, listener)
        : http.createServer(options.http ?? {}, listener);
    wire(h1, listener);
    server = h1;
  }
  return Object.defineProperty(server, 'gateway', { value: listener.gateway }) as NodeServer | NodeH2Server;
}

/** `https`, with `key` and `cert` folded in; undefined for plain HTTP. */
function tlsOf(options: NodeServerOptions): https.ServerOptions | undefined {
  if ((options.key === undefined) !== (options.cert === undefined)) {
    throw new TypeError('TLS needs both key and cert (PEM); give both, or neither for plain HTTP');
  }
  if (options.key === undefined) return options.https;
  return { ...options.https, key: options.key, cert: options.cert };
}

/** 100 Continue on the first read, and upgrades offered to the app. */
function wire(server: http.Server, listener: NodeListener): void {
  server.on('checkContinue', listener.checkContinue);
  server.on('upgrade', listener.upgrade);
}

/** close() also sends GOAWAY to the open HTTP/2 sessions and closes the idle HTTP/1.1 connections. */
function closingSessions(server: net.Server, h2: H2Host, h1: http.Server | undefined): void {
  const close = server.close.bind(server);
  server.close = (callback?: (err?: Error) => void) => {
    close(callback);
    h2.close();
    h1?.closeIdleConnections();
    return server;
  };
}
export { fromNodeListener, type NodeRequestListener } from './node-app.js';
