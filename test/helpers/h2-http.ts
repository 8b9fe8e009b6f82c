/**
 * The conformance suite's requests over HTTP/2: HTTP/1.1 request text is read as requests and each
 * sent as a stream of one node:http2 session, so the very cases of the suite run over h2. What
 * HTTP/2 cannot say (request-line syntax, chunked framing, connection options) has no translation:
 * the hosts skip those cases by name.
 */

import http2 from 'node:http2';
import type { RawExchange, RawOptions, RawResponse } from './raw-http.js';

/** One HTTP/1.1 request read from the text a case sends. */
interface ParsedRequest {
  method: string;
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** The body was framed by chunked coding (so it has no length of its own). */
  chunked: boolean;
}

/** Thrown for request text that has no HTTP/2 form. */
export class NoH2Form extends Error {}

/** Fields HTTP/2 forbids (RFC 9113 §8.2.2); the framing they carried is the stream's own. */
const CONNECTION_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function parseRequests(data: Buffer): ParsedRequest[] {
  const out: ParsedRequest[] = [];
  let off = 0;
  while (off < data.length) {
    const end = data.indexOf('\r\n\r\n', off);
    if (end === -1) throw new NoH2Form('an unfinished request head');
    const lines = data.subarray(off, end).toString('latin1').split('\r\n');
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0]!);
    if (!m) throw new NoH2Form(`a request line HTTP/2 cannot carry: ${JSON.stringify(lines[0])}`);
    const headers: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i <= 0 || /[\s]/.test(line.slice(0, i))) throw new NoH2Form(`a header line HTTP/2 cannot carry: ${line}`);
      headers.push([line.slice(0, i), line.slice(i + 1).trim()]);
    }
    let p = end + 4;
    const te = headers.find(([n]) => n.toLowerCase() === 'transfer-encoding')?.[1];
    const cl = headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1];
    let body = Buffer.alloc(0);
    let chunked = false;
    if (te !== undefined) {
      if (!/^chunked$/i.test(te)) throw new NoH2Form(`Transfer-Encoding: ${te}`);
      chunked = true;
      const parts: Buffer[] = [];
      for (;;) {
        const le = data.indexOf('\r\n', p);
        if (le === -1) throw new NoH2Form('an unfinished chunked body');
        const size = parseInt(data.subarray(p, le).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new NoH2Form('a malformed chunk');
        if (size === 0) {
          const tEnd = data.indexOf('\r\n\r\n', le);
          p = tEnd === le ? le + 4 : tEnd + 4;
          break;
        }
        parts.push(data.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else if (cl !== undefined && /^\d+$/.test(cl)) {
      body = Buffer.from(data.subarray(p, p + Number(cl)));
      p += Number(cl);
    } else if (cl !== undefined) {
      // A Content-Length that is not a length: whatever follows is the body.
      body = Buffer.from(data.subarray(p));
      p = data.length;
    }
    out.push({ method: m[1]!, target: m[2]!, headers, body, chunked });
    off = p;
  }
  return out;
}

/** The request's HTTP/2 header block: the first Host becomes `:authority`, any further one a `host` field. */
function h2Headers(r: ParsedRequest): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ':method': r.method };
  const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(r.target);
  if (absolute) {
    out[':authority'] = absolute[1];
    out[':path'] = absolute[2] || '/';
  } else if (r.method === 'CONNECT') {
    out[':authority'] = r.target;
  } else {
    out[':path'] = r.target;
  }
  for (const [name, value] of r.headers) {
    const key = name.toLowerCase();
    if (CONNECTION_FIELDS.has(key) || (key === 'te' && value.toLowerCase() !== 'trailers')) continue;
    if (key === 'host' && out[':authority'] === undefined && !absolute) {
      out[':authority'] = value;
      continue;
    }
    const held = out[key];
    if (held === undefined) out[key] = value;
    else out[key] = [...(Array.isArray(held) ? held : [String(held)]), value];
  }
  return out;
}

function responseOf(headers: http2.IncomingHttpHeaders, body: Buffer): RawResponse {
  const status = Number(headers[':status']);
  const lines: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [String(value)]) lines.push([name, v]);
  }
  const head = [`HTTP/2.0 ${status}`, ...lines.map(([n, v]) => `${n}: ${v}`)].join('\r\n');
  return { status, reason: '', version: '2.0', headers: lines, body, chunked: false, head };
}

/** Where the h2 transport connects: a port, with TLS or h2c. */
export interface H2Target {
  port: number;
  tls: boolean;
}

/**
 * The HTTP/2 counterpart of rawRequest(): each request of `data` as a stream on one session, the
 * responses in request order. `closed` says the session ended; `truncated`, that a stream was reset
 * before its response ended.
 */
export async function h2Request(
  target: H2Target,
  data: string | Buffer | Array<string | Buffer>,
  opts: RawOptions = {},
): Promise<RawExchange> {
  const buf = Buffer.concat(
    (Array.isArray(data) ? data : [data]).map((d) => (typeof d === 'string' ? Buffer.from(d, 'latin1') : d)),
  );
  const requests = parseRequests(buf);
  const session = http2.connect(`${target.tls ? 'https' : 'http'}://127.0.0.1:${target.port}`, {
    rejectUnauthorized: false,
  });
  session.on('error', () => {});
  let closed = false;
  session.once('close', () => (closed = true));
  const results = requests.map(
    (r) =>
      new Promise<{ responses: RawResponse[]; truncated: boolean; reset: number }>((resolve) => {
        const responses: RawResponse[] = [];
        const stream = session.request(h2Headers(r), { endStream: r.body.length === 0 && !r.chunked });
        const chunks: Buffer[] = [];
        let head: http2.IncomingHttpHeaders | undefined;
        stream.on('headers', (h) => responses.push(responseOf(h, Buffer.alloc(0))));
        stream.on('response', (h) => (head = h));
        stream.on('data', (d: Buffer) => chunks.push(d));
        stream.on('error', () => {});
        stream.on('close', () => {
          const complete = stream.rstCode === http2.constants.NGHTTP2_NO_ERROR && stream.readableEnded;
          if (head !== undefined) responses.push(responseOf(head, Buffer.concat(chunks)));
          resolve({ responses, truncated: head !== undefined && !complete, reset: stream.rstCode ?? 0 });
        });
        if (r.body.length > 0 || r.chunked) stream.end(r.body);
      }),
  );
  const timeout = new Promise<'timeout'>((resolve) =>
    setTimeout(() => resolve('timeout'), opts.timeout ?? 5000).unref(),
  );
  const settled = await Promise.race([Promise.all(results), timeout]);
  const all = settled === 'timeout' ? [] : settled;
  if (!opts.waitForClose) session.close();
  else await Promise.race([new Promise((r) => session.once('close', r)), timeout]);
  session.destroy();
  const responses = all.flatMap((x) => x.responses);
  const text = responses.map((r) => `${r.head}\r\n\r\n${r.body.toString('latin1')}`).join('');
  return { responses, text, closed, truncated: all.some((x) => x.truncated), resetCodes: all.map((x) => x.reset) };
}
