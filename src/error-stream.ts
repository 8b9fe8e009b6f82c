/** `wsgi.errors`: a text stream over any writable sink, accepting any Unicode and never throwing. */

import type { ErrorStream } from './types.js';

/** Anything with a `write(string)`: process.stderr, a file stream, a logger adapter. */
export interface TextSink {
  write(s: string): unknown;
}

export class TextErrorStream implements ErrorStream {
  readonly #sink: TextSink;
  constructor(sink: TextSink) {
    this.#sink = sink;
  }
  write(s: string): void {
    try {
      this.#sink.write(typeof s === 'string' ? s : String(s));
    } catch {
      // An error log that fails must not take the request down with it.
    }
  }
  writelines(lines: Iterable<string>): void {
    for (const line of lines) this.write(line);
  }
  flush(): void {}
}

/** Formats an error for the log: its stack if it has one, else its string form. */
export function formatError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  try {
    return `non-Error value thrown: ${typeof err === 'string' ? err : JSON.stringify(err)}`;
  } catch {
    return `non-Error value thrown: ${String(err)}`;
  }
}
