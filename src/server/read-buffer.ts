/**
 * Socket reads into one buffer the server owns, instead of a fresh 64 KiB allocation for every read
 * (a malloc and a shrink per request, a sizable part of serving a small request). Node offers this
 * as net.Socket's `onread` option, but only to sockets it does not accept itself; for accepted ones
 * the same two fields that option sets are set here, when this Node has them, else the socket stays
 * on 'data' events. The bytes are only valid during the callback: whatever is kept must be copied.
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';

const SIZE = 64 * 1024;
let shared: Buffer | undefined;

interface OnreadFields {
  buffer: symbol;
  callback: symbol;
}
/** The socket's own fields behind the `onread` option, found once; null when this Node has none. */
let fields: OnreadFields | null | undefined;

function onreadFields(socket: Socket): OnreadFields | null {
  if (fields !== undefined) return fields;
  const symbols = Object.getOwnPropertySymbols(socket);
  const buffer = symbols.find((s) => s.description === 'kBuffer');
  const callback = symbols.find((s) => s.description === 'kBufferCb');
  const own = socket as unknown as Record<symbol, unknown>;
  fields =
    buffer !== undefined && callback !== undefined && own[buffer] === null && own[callback] === null
      ? { buffer, callback }
      : null;
  return fields;
}

/**
 * Node's read callback: called with the socket as `this`, the byte count and the buffer read into.
 * One function can serve every socket.
 */
export type SharedRead = (this: Socket, n: number, buf: Buffer) => void;

/**
 * Has what the socket reads delivered to `onRead`, in the shared buffer: the bytes are valid until
 * it returns. False when the socket cannot read that way (then nothing was changed).
 */
export function readIntoSharedBuffer(socket: Socket, onRead: SharedRead): boolean {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buf: Uint8Array) => void } | null })._handle;
  if (typeof handle?.useUserBuffer !== 'function') return false;
  const f = onreadFields(socket);
  if (f === null) return false;
  const own = socket as unknown as Record<symbol, unknown>;
  if (own[f.buffer] !== null) return false;
  const buf = (shared ??= Buffer.allocUnsafe(SIZE));
  own[f.buffer] = buf;
  own[f.callback] = onRead;
  handle.useUserBuffer(buf);
  return true;
}

/**
 * Undoes readIntoSharedBuffer() for a socket handed to other code (a WebSocket): what it reads is
 * copied and pushed through the socket's own stream, so 'data' listeners get it (and a full stream
 * stops the reading until it is read).
 */
export function releaseSharedBuffer(socket: Socket): void {
  const f = fields;
  if (f === null || f === undefined) return;
  const own = socket as unknown as Record<symbol, unknown>;
  if (own[f.buffer] === null) return;
  own[f.callback] = pushCopy;
}

/** Node calls the read callback with the socket as `this`: one function serves every released socket. */
function pushCopy(this: Socket, n: number, buf: Buffer): boolean {
  return this.push(Buffer.from(buf.subarray(0, n)));
}
