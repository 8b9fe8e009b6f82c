/**
 * `compress`: gzip or brotli by `Accept-Encoding`, streaming: each chunk of the app's body goes
 * through the compressor as it comes and what comes out is passed on at once (an empty chunk when
 * the compressor holds it back, so block boundaries are kept). Skipped for small bodies of known
 * length, types that do not compress (images, archives), responses already encoded or marked
 * `no-transform`, HEAD and bodiless statuses. `Vary: Accept-Encoding` is added whenever the
 * answer depends on it.
 */

import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import compressible from 'compressible';
import Negotiator from 'negotiator';
import { toApp } from '../app-forms.js';
import type { App, AppLike, Body, Bytes, ResponseHeaders, StartResponse } from '../types.js';
import { closable, isBody, relay } from './body.js';
import { thenOrNow } from '../thenable.js';

export interface CompressOptions {
  /** Bodies with a Content-Length below this many bytes are sent as they are. Default 1024. */
  threshold?: number | undefined;
  /** Offer brotli (`br`) when the client accepts it. Default true. */
  brotli?: boolean | undefined;
  /** gzip level 1–9 (default 6); brotli quality 0–11 (default 4: brotli's top levels are too slow to stream). */
  gzipLevel?: number | undefined;
  brotliQuality?: number | undefined;
}

type Coding = 'br' | 'gzip';

function header(headers: ResponseHeaders, name: string): string | undefined {
  const l = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === l)?.[1];
}

/** Resolves once the compressor has taken `chunk`; what it produced meanwhile is in `out`. */
function feed(stream: zlib.Gzip | zlib.BrotliCompress, chunk: Bytes): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

export function compress(app: AppLike, options: CompressOptions = {}): App {
  const inner = toApp(app);
  const threshold = options.threshold ?? 1024;
  const available: Coding[] = options.brotli === false ? ['gzip'] : ['br', 'gzip'];
  const gzipLevel = options.gzipLevel ?? 6;
  const brotliQuality = options.brotliQuality ?? 4;
  // Checked here: zlib would refuse them only on the first compressed response.
  if (!(threshold >= 0))
    throw new RangeError(`compress: threshold must be a number of bytes >= 0, got ${String(options.threshold)}`);
  if (!Number.isInteger(gzipLevel) || gzipLevel < 1 || gzipLevel > 9)
    throw new RangeError(`compress: gzipLevel must be an integer from 1 to 9, got ${String(options.gzipLevel)}`);
  if (!Number.isInteger(brotliQuality) || brotliQuality < 0 || brotliQuality > 11) {
    throw new RangeError(
      `compress: brotliQuality must be an integer from 0 to 11, got ${String(options.brotliQuality)}`,
    );
  }
  return (environ, startResponse) => {
    let coding: Coding | undefined;
    const sr: StartResponse = (status, headers, excInfo) => {
      coding = undefined;
      // What the server must refuse is left for it to refuse, in its own words.
      if (
        typeof status !== 'string' ||
        !Array.isArray(headers) ||
        !headers.every((h) => Array.isArray(h) && typeof h[0] === 'string')
      ) {
        return startResponse(status, headers, excInfo);
      }
      const code = Number(status.slice(0, 3));
      const type = header(headers, 'content-type');
      const length = header(headers, 'content-length');
      const eligible =
        code >= 200 &&
        code !== 204 &&
        code !== 304 &&
        code !== 206 &&
        type !== undefined &&
        compressible(type.split(';')[0]!.trim()) === true &&
        header(headers, 'content-encoding') === undefined &&
        !/\bno-transform\b/i.test(header(headers, 'cache-control') ?? '');
      if (!eligible) return startResponse(status, headers, excInfo);
      const vary = header(headers, 'vary');
      const out: ResponseHeaders = headers.filter(([n]) => n.toLowerCase() !== 'vary');
      if (vary !== '*')
        out.push([
          'Vary',
          vary === undefined
            ? 'Accept-Encoding'
            : /\baccept-encoding\b/i.test(vary)
              ? vary
              : `${vary}, Accept-Encoding`,
        ]);
      const chosen = new Negotiator({
        headers: { 'accept-encoding': String(environ.HTTP_ACCEPT_ENCODING ?? '') },
      }).encoding(available) as Coding | undefined;
      const small = length !== undefined && Number(length) < threshold;
      if (chosen === undefined || small || environ.REQUEST_METHOD === 'HEAD')
        return startResponse(status, out, excInfo);
      coding = chosen;
      const encoded = out.filter(([n]) => n.toLowerCase() !== 'content-length');
      encoded.push(['Content-Encoding', chosen]);
      const write = startResponse(status, encoded, excInfo);
      // write() bypasses the body: its bytes go through the same compressor, flushed at once.
      return async (data) => {
        const c = compressor();
        if (data.length > 0) await feed(c, data);
        await new Promise<void>((r) => c.flush(() => r()));
        const out = take();
        if (out.length > 0) await write(out);
      };
    };
    // One compressor per response; its output collects in `pending` until passed on.
    let stream: zlib.Gzip | zlib.BrotliCompress | undefined;
    const pending: Buffer[] = [];
    const take = (): Buffer => {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      pending.length = 0;
      return all;
    };
    const compressor = () => {
      if (stream === undefined) {
        stream =
          coding === 'br'
            ? zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: brotliQuality } })
            : zlib.createGzip({ level: gzipLevel });
        stream.on('data', (b: Buffer) => pending.push(b));
      }
      return stream;
    };

    const wrap = (body: Body): Body => {
      if (!isBody(body) || (coding === undefined && Array.isArray(body))) return body as Body;
      return closable(
        (async function* () {
          try {
            for await (const chunk of relay(body)) {
              if (coding === undefined) {
                yield chunk;
                continue;
              }
              if (chunk.length > 0) await feed(compressor(), chunk);
              yield take();
            }
            if (coding !== undefined) {
              // Even an empty body gets a complete (empty) compressed stream.
              const c = compressor();
              await new Promise<void>((resolve, reject) => {
                c.once('error', reject);
                c.once('end', resolve);
                c.end();
              });
              yield take();
            }
          } finally {
            stream?.destroy();
          }
        })(),
        body,
      );
    };
    return thenOrNow(inner(environ, sr), wrap);
  };
}
