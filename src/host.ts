/**
 * What every host uses to describe its requests to the core and to carry its responses: the request
 * description, a connection's addresses, closing after a flush, the mount a host routed by, a memo of
 * header names by position, and the header lines a bridge passes on. Hosts keep only what differs.
 */

import type { Socket } from 'node:net';
import type { RequestAbort } from './abort.js';
import type { RequestInfo } from './environ.js';
import type { BodySource } from './input.js';
import type { ProxyHeader } from './server/proxy-protocol.js';
import { internalize } from './native.js';
import { targetPath } from './uri.js';
import type { Environ } from './types.js';

/** How long a connection being closed waits for the client to take what was written and hang up. */
export const CLOSE_LINGER_MS = 2000;

/** Both ends of a connection, as the request description carries them. */
export interface Peers {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  tls: boolean;
  /** The PROXY protocol header the connection began with (the raw server's, SPEC §18). */
  proxy: ProxyHeader | undefined;
}

/** Each of Node's address getters asks the socket handle again: a connection's are read once. */
const peersBySocket = new WeakMap<Socket, Peers>();

/** The addresses of a connection, read once per connection. */
export function peersOf(socket: Socket): Peers {
  return peersBySocket.get(socket) ?? readPeers(socket);
}

/** peersOf() on a connection's first request: apart, so the hot path inlines without the getters. */
function readPeers(socket: Socket): Peers {
  const peers: Peers = {
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    tls: (socket as { encrypted?: boolean }).encrypted === true,
    proxy: undefined,
  };
  // A socket already closed has no addresses to give; do not remember that.
  if (peers.remoteAddress !== undefined) peersBySocket.set(socket, peers);
  return peers;
}

/**
 * A request description with every field present (one object shape for every host, so the core's
 * reads of it stay monomorphic); hosts then set what they know besides.
 */
export function describeRequest(
  method: string,
  target: string,
  httpVersion: string,
  rawHeaders: readonly string[],
  peers: Peers,
  exchange: BodySource & RequestAbort,
  scriptName: string | undefined,
): RequestInfo {
  return {
    method,
    target,
    httpVersion,
    rawHeaders,
    remoteAddress: peers.remoteAddress,
    remotePort: peers.remotePort,
    localAddress: peers.localAddress,
    localPort: peers.localPort,
    tls: peers.tls,
    scriptName,
    path: undefined,
    errors: undefined,
    framing: undefined,
    streamed: undefined,
    body: exchange,
    abort: exchange,
    sendContinue: undefined,
    upgrade: undefined,
    authority: undefined,
    proxy: peers.proxy,
  };
}

/**
 * Ends a socket once what was written is flushed and destroys it when the client hangs up or after
 * CLOSE_LINGER_MS. `ownReader`: the caller reads the socket itself (the raw server) and has stopped,
 * so the socket is read on and what comes is dropped, lest unread input reset the connection before
 * the client has the answer; a socket node:http reads is left to node:http, which would parse what
 * came. A stand-in socket (Fastify's inject()) may lack all that: it is destroyed, having nothing to
 * flush.
 */
export function closeAfterFlush(socket: Socket, ownReader: boolean): void {
  if (typeof socket.end !== 'function') {
    (socket as { destroy?: () => void }).destroy?.();
    return;
  }
  if (socket.writableEnded) return; // already closing
  if (ownReader) socket.resume();
  socket.end();
  const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
}

/** SCRIPT_NAME as the request spelled it, and the routed path when the host rewrote the URL. */
export interface HostMount {
  /** The mount prefix as it stands in the routed path (a host may match it without regard to case). */
  scriptName: string;
  /** The routed path, when it is not the target's own path. */
  path: string | undefined;
}

/**
 * Where a host mounted the app (`mount`, percent-encoded, '' for the root) and the path it routed on
 * (`routed`: its URL after any rewrite, the whole path), for a request whose target is `target`.
 */
export function hostMount(target: string, mount: string, routed: string): HostMount {
  let scriptName = mount;
  if (!routed.startsWith(mount) && routed.slice(0, mount.length).toLowerCase() === mount.toLowerCase()) {
    scriptName = routed.slice(0, mount.length);
  }
  return { scriptName, path: routed === targetPath(target) ? undefined : routed };
}

/**
 * A value made from a header name, remembered by the name's position in the last list seen: clients
 * and apps send the same names in the same order request after request, and comparing two short
 * strings costs less than hashing one for a map.
 */
export class PositionalMemo<T> {
  readonly #names: string[] = [];
  readonly #values: T[] = [];
  readonly #positions: number;

  constructor(positions: number) {
    this.#positions = positions;
  }

  /** The value remembered for `name` at position `i`, if that is the name seen there last. */
  get(i: number, name: string): T | undefined {
    return this.#names[i] === name ? this.#values[i] : undefined;
  }

  set(i: number, name: string, value: T): void {
    if (i >= this.#positions) return;
    // A copy of its own: the name as parsed may be a slice of a request head it would keep alive.
    this.#names[i] = internalize(name);
    this.#values[i] = value;
  }

  /**
   * After a hit on get(i, name): a string equal to `name`, the one every request with that name at
   * that position shares, so what a request keeps (its header pairs) holds no copy of its own.
   */
  nameAt(i: number): string {
    return this.#names[i]!;
  }
}

/**
 * The header lines a bridge passes to the handler it calls: the request's as received
 * (`nsgi.raw_headers`), less the names with '_' that the environ dropped (SPEC §5.3), so a handler
 * behind a bridge sees what an app would.
 */
export function bridgedHeaderLines(environ: Environ): Array<readonly [string, string]> {
  const lines: Array<readonly [string, string]> = [];
  for (const line of environ['nsgi.raw_headers']) if (!line[0].includes('_')) lines.push(line);
  return lines;
}
