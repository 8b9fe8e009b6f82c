/** `wsgi.file_wrapper`: turns a file-like object into a body read block by block from its current position. */

import type { Bytes, FileLike } from './types.js';

const DEFAULT_BLOCK = 64 * 1024;

/** The body `wsgi.file_wrapper` returns. Servers may recognise it to send the file more directly. */
export class FileWrapperBody implements AsyncIterable<Bytes> {
  readonly filelike: FileLike;
  readonly blockSize: number;
  #closed = false;

  constructor(filelike: FileLike, blockSize: number = DEFAULT_BLOCK) {
    if (filelike === null || typeof filelike !== 'object' || typeof filelike.read !== 'function') {
      throw new TypeError('wsgi.file_wrapper(filelike): filelike must have a read(size) method');
    }
    if (!Number.isInteger(blockSize) || blockSize <= 0) {
      throw new TypeError(
        `wsgi.file_wrapper(filelike, blockSize): blockSize must be a positive integer, got ${String(blockSize)}`,
      );
    }
    this.filelike = filelike;
    this.blockSize = blockSize;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Bytes> {
    while (!this.#closed) {
      const block = await this.filelike.read(this.blockSize);
      if (!(block instanceof Uint8Array)) {
        throw new TypeError('wsgi.file_wrapper: filelike.read() must return a Uint8Array');
      }
      if (block.length === 0) return;
      yield block;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.filelike.close?.();
  }
}

export function fileWrapper(filelike: FileLike, blockSize?: number): FileWrapperBody {
  return new FileWrapperBody(filelike, blockSize);
}
