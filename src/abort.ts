/**
 * The abort state of one request. Transports call abort() when the client disconnects or the server
 * shuts down; the AbortSignal apps see as `nsgi.signal` is only created if something reads it,
 * because an AbortController per request is a measurable cost on small responses.
 */
export class RequestAbort {
  aborted = false;
  reason: unknown = undefined;
  #controller: AbortController | undefined;
  #listeners: Array<() => void> | undefined;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const fn of listeners) fn();
  }

  /** Calls `fn` once on abort; returns a function that unsubscribes. */
  onAbort(fn: () => void): () => void {
    (this.#listeners ??= []).push(fn);
    return () => {
      const l = this.#listeners;
      if (l === undefined) return;
      const i = l.indexOf(fn);
      if (i !== -1) l.splice(i, 1);
    };
  }
}
