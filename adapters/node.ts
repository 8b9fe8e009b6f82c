/**
 * node:http / node:https adapter: `http.createServer(toNodeListener(app))`.
 * Turns an IncomingMessage into the core's request description and a ServerResponse into its sink.
 */

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { Gateway, type GatewayOptions } from '../src/gateway.js';
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
  /** TLS options (key, cert, ...): when given, an https server is created. */
  https?: https.ServerOptions | undefined;
  /** Options passed to http.createServer. */
  http?: http.ServerOptions | undefined;
}

/** The server createNodeServer() makes, with its gateway (for `gateway.closeWebSockets(grace)` on shutdown). */
export type NodeServer = (http.Server | https.Server) & { readonly gateway: Gateway };

/**
 * Creates an http (or https) server serving `app`, with `100 Continue` sent on the app's first read
 * and WebSocket handshakes offered to the app. `server.close()` does not close WebSockets: call
 * `server.gateway.closeWebSockets(grace)` first.
 */
export function createNodeServer(app: AppLike, options: NodeServerOptions = {}): NodeServer {
  const listener = toNodeListener(app, options);
  const server = options.https
    ? https.createServer(options.https, listener)
    : http.createServer(options.http ?? {}, listener);
  server.on('checkContinue', listener.checkContinue);
  server.on('upgrade', listener.upgrade);
  return Object.defineProperty(server, 'gateway', { value: listener.gateway }) as NodeServer;
}
export { fromNodeListener, type NodeRequestListener } from './node-app.js';
