/**
 * Closing a node:http server (`--server node|express|fastify`) the way the bundled server closes
 * (SPEC §14). node:http's close() destroys every connection without a request in progress, one its
 * client opened a moment ago included (closeIdleConnections): a request on its way is reset, and
 * on a busy machine a client may not have sent its request yet when a rolling reload closes the
 * old worker. Here, once closing, responses close their connection; a connection that has served
 * a request is closed once idle for DRAIN_IDLE_MS with nothing more read; one that has sent nothing
 * keeps node:http's header timeout.
 */

import type http from 'node:http';
import net from 'node:net';
import { DRAIN_IDLE_MS } from '../server/connection.js';

/** What is known of a connection once it has sent a request. */
interface Use {
  /** Requests whose response has not finished. */
  busy: number;
  /** When the last response finished (Date.now()). */
  idleSince: number;
  /** Bytes read by then: more since means a request is on its way. */
  readThen: number;
}

/**
 * Makes `server.close()` and `server.closeIdleConnections()` (which Fastify's close calls too)
 * spare the connections that have not sent a request. Returns the sweep to repeat while closing.
 */
export function drainLikeBundledServer(server: http.Server): () => void {
  // Keyed by the request's socket (over TLS, not the TCP socket of the 'connection' event).
  const used = new Map<net.Socket, Use>();
  let closing = false;
  // First among the listeners, so that a response the app sends at once already closes.
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    // While closing, every response closes its connection, as on the bundled server.
    if (closing) res.shouldKeepAlive = false;
    const socket = req.socket;
    let use = used.get(socket);
    if (use === undefined) {
      used.set(socket, (use = { busy: 0, idleSince: 0, readThen: 0 }));
      socket.once('close', () => used.delete(socket));
    }
    use.busy++;
    res.once('close', () => {
      use.busy--;
      use.idleSince = Date.now();
      use.readThen = socket.bytesRead;
    });
  });
  const sweep = (): void => {
    const now = Date.now();
    for (const [socket, use] of used) {
      if (use.busy > 0 || socket.bytesRead !== use.readThen) continue;
      if (now - use.idleSince >= DRAIN_IDLE_MS) socket.destroy();
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
