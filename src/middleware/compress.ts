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

/** The defaults, as data. */
const DEFAULTS = { threshold: 1024, brotli: true, gzipLevel: 6, brotliQuality: 4 } as const;

interface Settings {
  threshold: number;
  available: Coding[];
  gzipLevel: number;
  brotliQuality: number;
}

/** The options with their defaults, checked now: zlib would refuse bad levels only on the first compressed response. */
function settingsOf(options: CompressOptions): Settings {
  const threshold = options.threshold ?? DEFAULTS.threshold;
  const gzipLevel = options.gzipLevel ?? DEFAULTS.gzipLevel;
  const brotliQuality = options.brotliQuality ?? DEFAULTS.brotliQuality;
  if (!(threshold >= 0))
    throw new RangeError(`compress: threshold must be a number of bytes >= 0, got ${String(options.threshold)}`);
  if (!Number.isInteger(gzipLevel) || gzipLevel < 1 || gzipLevel > 9)
    throw new RangeError(`compress: gzipLevel must be an integer from 1 to 9, got ${String(options.gzipLevel)}`);
  if (!Number.isInteger(brotliQuality) || brotliQuality < 0 || brotliQuality > 11) {
    throw new RangeError(
      `compress: brotliQuality must be an integer from 0 to 11, got ${String(options.brotliQuality)}`,
    );
  }
  const available: Coding[] = (options.brotli ?? DEFAULTS.brotli) ? ['br', 'gzip'] : ['gzip'];
  return { threshold, available, gzipLevel, brotliQuality };
}

/** True for a response whose body may be compressed: a compressible type, not encoded, not no-transform. */
function eligible(code: number, headers: ResponseHeaders): boolean {
  const type = header(headers, 'content-type');
  return (
    code >= 200 &&
    code !== 204 &&
    code !== 304 &&
    code !== 206 &&
    type !== undefined &&
    compressible(type.split(';')[0]!.trim()) === true &&
    header(headers, 'content-encoding') === undefined &&
    !/\bno-transform\b/i.test(header(headers, 'cache-control') ?? '')
  );
}

/** The headers with `Accept-Encoding` in Vary (unless Vary is `*`). */
function varyOnEncoding(headers: ResponseHeaders): ResponseHeaders {
  const vary = header(headers, 'vary');
  const out: ResponseHeaders = headers.filter(([n]) => n.toLowerCase() !== 'vary');
  if (vary === '*') return out;
  out.push([
    'Vary',
    vary === undefined ? 'Accept-Encoding' : /\baccept-encoding\b/i.test(vary) ? vary : `${vary}, Accept-Encoding`,
  ]);
  return out;
}

/** One response's compressor, made on first use; its output collects until taken. */
class Compression {
  readonly coding: Coding;
  readonly #settings: Settings;
  #stream: zlib.Gzip | zlib.BrotliCompress | undefined;
  readonly #pending: Buffer[] = [];

  constructor(coding: Coding, settings: Settings) {
    this.coding = coding;
    this.#settings = settings;
  }

  #compressor(): zlib.Gzip | zlib.BrotliCompress {
    if (this.#stream === undefined) {
      const { brotliQuality, gzipLevel } = this.#settings;
      this.#stream =
        this.coding === 'br'
          ? zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: brotliQuality } })
          : zlib.createGzip({ level: gzipLevel });
      this.#stream.on('data', (b: Buffer) => this.#pending.push(b));
    }
    return this.#stream;
  }

  /** What the compressor produced so far (empty when it holds everything back). */
  take(): Buffer {
    const pending = this.#pending;
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending.length = 0;
    return all;
  }

  /** Compresses `chunk`; returns what came out. */
  async push(chunk: Bytes): Promise<Buffer> {
    if (chunk.length > 0) await feed(this.#compressor(), chunk);
    return this.take();
  }

  /** Compresses `data` and flushes, for write(): its bytes go out at once. */
  async flushed(data: Bytes): Promise<Buffer> {
    const c = this.#compressor();
    if (data.length > 0) await feed(c, data);
    await new Promise<void>((r) => c.flush(() => r()));
    return this.take();
  }

  /** Ends the stream (an empty body still gets a complete, empty, compressed stream); returns the rest. */
  async end(): Promise<Buffer> {
    const c = this.#compressor();
    await new Promise<void>((resolve, reject) => {
      c.once('error', reject);
      c.once('end', resolve);
      c.end();
    });
    return this.take();
  }

  destroy(): void {
    this.#stream?.destroy();
  }
}

/** The body passed on chunk by chunk, compressed when the response chose a coding. */
async function* compressed(body: Body, coding: () => Compression | undefined): AsyncGenerator<Bytes, void, undefined> {
  try {
    for await (const chunk of relay(body)) {
      const c = coding();
      yield c === undefined ? chunk : await c.push(chunk);
    }
    const c = coding();
    if (c !== undefined) yield await c.end();
  } finally {
    coding()?.destroy();
  }
}

export function compress(app: AppLike, options: CompressOptions = {}): App {
  const inner = toApp(app);
  const settings = settingsOf(options);
  return (environ, startResponse) => {
    let compression: Compression | undefined;
    const sr: StartResponse = (status, headers, excInfo) => {
      compression?.destroy();
      compression = undefined;
      // What the server must refuse is left for it to refuse, in its own words.
      if (
        typeof status !== 'string' ||
        !Array.isArray(headers) ||
        !headers.every((h) => Array.isArray(h) && typeof h[0] === 'string')
      ) {
        return startResponse(status, headers, excInfo);
      }
      if (!eligible(Number(status.slice(0, 3)), headers)) return startResponse(status, headers, excInfo);
      const out = varyOnEncoding(headers);
      const chosen = new Negotiator({
        headers: { 'accept-encoding': environ.HTTP_ACCEPT_ENCODING ?? '' },
      }).encoding(settings.available) as Coding | undefined;
      const length = header(headers, 'content-length');
      const small = length !== undefined && Number(length) < settings.threshold;
      if (chosen === undefined || small || environ.REQUEST_METHOD === 'HEAD')
        return startResponse(status, out, excInfo);
      const c = (compression = new Compression(chosen, settings));
      const encoded = out.filter(([n]) => n.toLowerCase() !== 'content-length');
      encoded.push(['Content-Encoding', chosen]);
      const write = startResponse(status, encoded, excInfo);
      // write() bypasses the body: its bytes go through the same compressor, flushed at once.
      return async (data) => {
        const bytes = await c.flushed(data);
        if (bytes.length > 0) await write(bytes);
      };
    };
    const wrap = (body: Body): Body => {
      if (!isBody(body) || (compression === undefined && Array.isArray(body))) return body as Body;
      return closable(
        compressed(body, () => compression),
        body,
      );
    };
    return thenOrNow(inner(environ, sr), wrap);
  };
}
