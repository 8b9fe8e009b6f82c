/**
 * The abort state of one request. Transports call abort() when the client disconnects or the server
 * shuts down. Both halves are lazy, because each is a measurable cost on small responses: the
 * AbortSignal apps see as `nsgi.signal` is created only if something reads it, and a transport may
 * start watching its connection only when watch() is first called (the core calls it as soon as a
 * request stops being synchronous), checking then whether the client is already gone.
 */
export class RequestAbort {
  aborted = false;
  reason: unknown = undefined;
  #controller: AbortController | undefined;
  #listeners: Array<() => void> | undefined;
  #watching = false;

  /** Transports override this to start listening for disconnects; called at most once. */
  protected startWatching(): void {}

  /** Makes sure disconnects are being watched for. */
  watch(): void {
    if (this.#watching) return;
    this.#watching = true;
    this.startWatching();
  }

  get signal(): AbortSignal {
    this.watch();
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
    this.watch();
    (this.#listeners ??= []).push(fn);
    return () => {
      const l = this.#listeners;
      if (l === undefined) return;
      const i = l.indexOf(fn);
      if (i !== -1) l.splice(i, 1);
    };
  }
}
