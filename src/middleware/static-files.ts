/**
 * `staticFiles`: serves the files under a directory. Paths cannot leave the root (`..`, encoded
 * slashes, NUL and symlinks pointing out are refused); responses carry the MIME type, ETag and
 * Last-Modified, answer conditional GETs with 304 and single byte ranges with 206; files are read
 * through `wsgi.file_wrapper`, block by block, never whole into memory.
 */

import { Buffer } from 'node:buffer';
import { statSync, type Stats } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import etag from 'etag';
import fresh from 'fresh';
import mime from 'mime-types';
import parseRange from 'range-parser';
import { toApp } from '../app-forms.js';
import { decodeNative } from '../native.js';
import type { App, AppLike, Bytes, Environ, FileLike, ResponseHeaders } from '../types.js';
import { notFound } from './mount.js';
import { plainText } from './plain-text.js';

export interface StaticFilesOptions {
  /** Served for a directory path. Default `'index.html'`; `false` for none. */
  index?: string | false | undefined;
  /** `Cache-Control: public, max-age=<seconds>`. Default 0. */
  maxAge?: number | undefined;
  /** Answers what is not a file under the root (and methods other than GET/HEAD). Default: 404. */
  fallthrough?: AppLike | undefined;
  /** Block size for reading. Default 64 KiB. */
  blockSize?: number | undefined;
}

/** A file (or a range of it) as a file-like object for wsgi.file_wrapper. */
class FileRange implements FileLike {
  #handle: Awaited<ReturnType<typeof open>> | undefined;
  #position: number;
  #left: number;
  readonly #path: string;

  constructor(path: string, start: number, length: number) {
    this.#path = path;
    this.#position = start;
    this.#left = length;
  }

  async read(size = 64 * 1024): Promise<Bytes> {
    if (this.#left <= 0) return new Uint8Array(0);
    this.#handle ??= await open(this.#path, 'r');
    const buf = Buffer.allocUnsafe(Math.min(size, this.#left));
    const { bytesRead } = await this.#handle.read(buf, 0, buf.length, this.#position);
    this.#position += bytesRead;
    this.#left = bytesRead === 0 ? 0 : this.#left - bytesRead;
    return buf.subarray(0, bytesRead);
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    this.#left = 0;
    await handle?.close();
  }
}

/** The file a PATH_INFO names under `root`, or undefined when the path is not one it may serve. */
function localPath(root: string, pathInfo: string): string | undefined {
  let path: string;
  try {
    path = decodeNative(pathInfo);
  } catch {
    return undefined;
  }
  // PATH_INFO is already percent-decoded: a NUL, a backslash or a dot segment is never a file name here.
  if (path.includes('\0') || path.includes('\\')) return undefined;
  const segments = path.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return undefined;
  const full = resolve(root, `.${path}`);
  if (full !== root && !full.startsWith(root + sep)) return undefined;
  return full;
}

export function staticFiles(root: string, options: StaticFilesOptions = {}): App {
  if (typeof root !== 'string' || root === '') throw new TypeError('staticFiles(root): give the directory to serve');
  const base = resolve(root);
  // A mistyped root would otherwise only show as every file being 404.
  if (!statSync(base, { throwIfNoEntry: false })?.isDirectory()) {
    throw new RangeError(
      `staticFiles: ${JSON.stringify(root)} (${base}) is not a directory; give the directory to serve`,
    );
  }
  const index = options.index ?? 'index.html';
  const maxAge = options.maxAge ?? 0;
  if (!(maxAge >= 0))
    throw new RangeError(`staticFiles: maxAge must be a number of seconds >= 0, got ${String(options.maxAge)}`);
  const fallthrough = options.fallthrough === undefined ? notFound : toApp(options.fallthrough);
  const blockSize = options.blockSize ?? 64 * 1024;
  let realBase: Promise<string> | undefined;

  const find = async (
    environ: Environ,
  ): Promise<{ path: string; size: number; mtime: Date; stats: Stats } | undefined> => {
    let path = localPath(base, environ.PATH_INFO || '/');
    if (path === undefined) return undefined;
    let info = await stat(path).catch(() => undefined);
    if (info?.isDirectory()) {
      if (index === false || !(environ.PATH_INFO || '/').endsWith('/')) return undefined;
      path = join(path, index);
      info = await stat(path).catch(() => undefined);
    }
    if (info === undefined || !info.isFile()) return undefined;
    // A symlink may point anywhere: what it resolves to must still be under the root.
    realBase ??= realpath(base);
    const [real, top] = await Promise.all([realpath(path), realBase]);
    if (real !== top && !real.startsWith(top + sep)) return undefined;
    return { path: real, size: info.size, mtime: info.mtime, stats: info };
  };

  return async (environ, startResponse) => {
    const method = environ.REQUEST_METHOD;
    if (method !== 'GET' && method !== 'HEAD') return fallthrough(environ, startResponse);
    const file = await find(environ);
    if (file === undefined) return fallthrough(environ, startResponse);

    const tag = etag(file.stats);
    const modified = file.mtime.toUTCString();
    const type = mime.contentType(file.path.split(sep).pop() ?? '') || 'application/octet-stream';
    const headers: ResponseHeaders = [
      ['Content-Type', type],
      ['ETag', tag],
      ['Last-Modified', modified],
      ['Accept-Ranges', 'bytes'],
      ['Cache-Control', `public, max-age=${maxAge}`],
    ];
    const requestHeaders = {
      'if-none-match': environ.HTTP_IF_NONE_MATCH,
      'if-modified-since': environ.HTTP_IF_MODIFIED_SINCE,
      'cache-control': environ.HTTP_CACHE_CONTROL,
    };
    if (
      (requestHeaders['if-none-match'] || requestHeaders['if-modified-since']) &&
      fresh(requestHeaders, { etag: tag, 'last-modified': modified })
    ) {
      startResponse(
        '304 Not Modified',
        headers.filter(([n]) => n !== 'Content-Type'),
      );
      return [];
    }

    let start = 0;
    let length = file.size;
    let status = '200 OK';
    const range = environ.HTTP_RANGE;
    // If-Range: the range applies only to the version the client already has.
    const ifRange = environ.HTTP_IF_RANGE;
    const rangeValid = ifRange === undefined || ifRange === tag || ifRange === modified;
    if (range !== undefined && rangeValid) {
      const ranges = parseRange(file.size, range, { combine: true });
      if (ranges === -1) {
        return plainText('416 Range Not Satisfiable', 'Range Not Satisfiable\n', [
          ['Content-Range', `bytes */${file.size}`],
        ])(environ, startResponse);
      }
      // One range is served as such; several (or a malformed header) get the whole file, as RFC 9110 allows.
      if (Array.isArray(ranges) && ranges.type === 'bytes' && ranges.length === 1) {
        start = ranges[0]!.start;
        length = ranges[0]!.end - start + 1;
        status = '206 Partial Content';
        headers.push(['Content-Range', `bytes ${start}-${ranges[0]!.end}/${file.size}`]);
      }
    }
    headers.push(['Content-Length', String(length)]);
    startResponse(status, headers);
    if (method === 'HEAD' || length === 0) return [];
    return environ['wsgi.file_wrapper'](new FileRange(file.path, start, length), blockSize);
  };
}
