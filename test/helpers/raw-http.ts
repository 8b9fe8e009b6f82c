/** A raw-socket HTTP/1.1 client for tests: exact bytes out, exact bytes and timing in. */

import net from 'node:net';

export interface RawResponse {
  status: number;
  reason: string;
  version: string;
  /** Header lines as received, in order. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** True when the body was chunked and ended with a proper terminator. */
  chunked: boolean;
  /** The exact bytes of the head (status line and headers). */
  head: string;
}

export function header(r: RawResponse, name: string): string | undefined {
  const l = name.toLowerCase();
  return r.headers.find(([n]) => n.toLowerCase() === l)?.[1];
}

export function headerAll(r: RawResponse, name: string): string[] {
  const l = name.toLowerCase();
  return r.headers.filter(([n]) => n.toLowerCase() === l).map(([, v]) => v);
}

/**
 * Parses as many complete responses as `buf` holds. `methods` tells which requests were HEAD (no body).
 * Returns the responses and how many bytes they used. Interim 1xx responses are returned too.
 */
export function parseResponses(
  buf: Buffer,
  methods: string[],
  eof: boolean,
): { responses: RawResponse[]; used: number; truncated: boolean } {
  const responses: RawResponse[] = [];
  let off = 0;
  let truncated = false;
  let mi = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end === -1) {
      truncated = eof;
      break;
    }
    const head = buf.subarray(off, end).toString('latin1');
    const lines = head.split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0]!);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const headers = lines.slice(1).map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i), l.slice(i + 1).trim()] as [string, string];
    });
    const status = Number(m[2]);
    const r: RawResponse = {
      status,
      reason: m[3]!,
      version: m[1]!,
      headers,
      body: Buffer.alloc(0),
      chunked: false,
      head,
    };
    let p = end + 4;
    if (status >= 100 && status < 200) {
      responses.push(r);
      off = p;
      continue;
    }
    const method = methods[mi++] ?? 'GET';
    const cl = header(r, 'content-length');
    const te = header(r, 'transfer-encoding');
    if (method === 'HEAD' || status === 204 || status === 304) {
      // no body
    } else if (te && /chunked/i.test(te)) {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le === -1) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        if (size === 0) {
          const tEnd = buf.indexOf('\r\n', le + 2);
          if (tEnd === -1) break;
          p = tEnd + 2;
          complete = true;
          break;
        }
        if (le + 2 + size + 2 > buf.length) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      r.body = Buffer.concat(parts);
      r.chunked = complete;
      if (!complete) {
        truncated = eof;
        if (eof) responses.push(r);
        break;
      }
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (p + n > buf.length) {
        r.body = buf.subarray(p);
        truncated = eof;
        if (eof) responses.push(r);
        off = buf.length;
        break;
      }
      r.body = buf.subarray(p, p + n);
      p += n;
    } else {
      // close-delimited
      if (!eof) break;
      r.body = buf.subarray(p);
      p = buf.length;
    }
    responses.push(r);
    off = p;
  }
  return { responses, used: off, truncated };
}

export interface RawExchange {
  responses: RawResponse[];
  /** Everything received, as latin-1 text. */
  text: string;
  /** True when the server closed the connection. */
  closed: boolean;
  /** True when the last response was cut short by the close. */
  truncated: boolean;
  /** Over HTTP/2: each stream's RST_STREAM code (0 for one that ended normally), in request order. */
  resetCodes?: number[] | undefined;
}

export interface RawOptions {
  /** How many final responses to wait for before ending (default: one per method). */
  expect?: number;
  /** Methods of the requests sent, in order, so HEAD responses are parsed without a body. */
  methods?: string[];
  /** Give up after this long (ms) and return what arrived. */
  timeout?: number;
  /** Keep the socket open after the expected responses arrive, until the server closes it or the timeout. */
  waitForClose?: boolean;
}

/** Sends `data` (or each item of it in turn) and collects responses until `expect` finals arrived or the server closed. */
export function rawRequest(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  opts: RawOptions = {},
): Promise<RawExchange> {
  const methods = opts.methods ?? ['GET'];
  const expect = opts.expect ?? methods.length;
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const buf = Buffer.concat(chunks);
      try {
        const { responses, truncated } = parseResponses(buf, methods, closed);
        resolve({ responses: responses, text: buf.toString('latin1'), closed, truncated });
      } catch (e) {
        reject(e);
      }
      sock.destroy();
    };
    const timer = setTimeout(finish, opts.timeout ?? 5000);
    sock.on('data', (d) => {
      chunks.push(d);
      if (opts.waitForClose) return;
      const { responses } = parseResponses(Buffer.concat(chunks), methods, false);
      if (responses.filter((r) => r.status >= 200).length >= expect) finish();
    });
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.on('error', () => {
      closed = true;
    });
    sock.on('connect', () => {
      for (const d of Array.isArray(data) ? data : [data])
        sock.write(typeof d === 'string' ? Buffer.from(d, 'latin1') : d);
    });
  });
}

/** Opens a socket for step-by-step tests. */
export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with everything received until `predicate(text)` holds, or rejects after `timeout` ms. */
export function readUntil(sock: net.Socket, predicate: (text: string) => boolean, timeout = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (predicate(text)) {
        cleanup();
        resolve(text);
      }
    };
    const onClose = () => {
      cleanup();
      if (predicate(text)) resolve(text);
      else reject(new Error(`connection closed; received ${JSON.stringify(text.slice(0, 500))}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out; received ${JSON.stringify(text.slice(0, 500))}`));
    }, timeout);
    const cleanup = () => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
    };
    sock.on('data', onData);
    sock.on('close', onClose);
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A promise with its resolve function (Promise.withResolvers is not in Node 20). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
