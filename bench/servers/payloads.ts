/** The responses every benchmarked server sends, identical byte for byte. */
export const HELLO = Buffer.from('hello world'); // 11 bytes
export const BIG = Buffer.alloc(64 * 1024, 'x'); // 64 KiB
export const TEXT = 'text/plain';
