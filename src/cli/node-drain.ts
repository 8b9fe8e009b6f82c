/**
 * Closing a node:http server (`--server node|express|fastify`) the way the bundled server closes
 * (SPEC §14). node:http's close() destroys every connection without a request in progress, one its
 * client opened a moment ago included (closeIdleConnections): a request on its way is reset, and
 * on a busy machine a client may not have sent its request yet when a rolling reload closes the
 * old worker. Here, once closing, responses close their connection; a connection that has served
 * a request is closed once it has stayed idle for DRAIN_IDLE_MS with nothing more read; one that
 * has sent nothing keeps node:http's header timeout.
 */

import type http from 'node:http';
import net from 'node:net';
import { DRAIN_IDLE_MS } from '../server/connection.js';

const LAST_RESPONSE = Symbol('nsgi.lastResponse');

/** A connection that has sent a request (over TLS, the TLS socket), with the last response it got. */
type Used = net.Socket & { [LAST_RESPONSE]?: http.ServerResponse };

/**
 * Makes `server.close()` and `server.closeIdleConnections()` (which Fastify's close calls too)
 * spare the connections that have not sent a request. Returns the sweep to repeat while closing.
 */
export function drainLikeBundledServer(server: http.Server): () => void {
  const used = new Set<Used>();
  // While closing: when each connection was first seen idle, and what it had read by then.
  const idle = new Map<Used, { since: number; read: number }>();
  let closing = false;
  // First among the listeners, so that a response the app sends at once already closes. Per
  // request only a property store: what the sweep needs it reads from the connection then.
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    // While closing, every response closes its connection, as on the bundled server.
    if (closing) res.shouldKeepAlive = false;
    const socket = req.socket as Used;
    if (socket[LAST_RESPONSE] === undefined) {
      used.add(socket);
      socket.once('close', () => {
        used.delete(socket);
        idle.delete(socket);
      });
    }
    socket[LAST_RESPONSE] = res;
  });
  const sweep = (): void => {
    const now = Date.now();
    for (const socket of used) {
      if (!socket[LAST_RESPONSE]!.writableFinished) {
        idle.delete(socket);
        continue;
      }
      const seen = idle.get(socket);
      if (seen === undefined || seen.read !== socket.bytesRead)
        idle.set(socket, { since: now, read: socket.bytesRead });
      else if (now - seen.since >= DRAIN_IDLE_MS) socket.destroy();
    }
  };
  // net.Server's close (stop listening, call back once every connection is gone) without
  // node:http's closeIdleConnections() before it; its header-timeout check keeps running.
  server.close = (callback?: (err?: Error) => void) => {
    closing = true;
    net.Server.prototype.close.call(server, callback);
    sweep();
    return server;
  };
  server.closeIdleConnections = sweep;
  return sweep;
}
