import { inspect } from 'node:util';

// Set by RequestAbort's static block, which alone can reach its private fields.
let moveState: (from: RequestAbort) => RequestAbort;
let adoptSlot: (abort: RequestAbort, slot: SignalSlot) => void;

/**
 * The abort state of one request. Transports call abort() when the client disconnects or the server
 * shuts down. Both halves are lazy, because each is a measurable cost on small responses: the
 * AbortSignal behind `nsgi.signal` is created only if something uses it, and a transport may
 * start watching its connection only when watch() is first called (the core calls it as soon as a
 * request stops being synchronous), checking then whether the client is already gone.
 */
export class RequestAbort {
  aborted = false;
  reason: unknown = undefined;
  #controller: AbortController | undefined;
  #listeners: Array<() => void> | undefined;
  #watching = false;
  /** The stand-in behind `nsgi.signal`, once made (lazySignal): it follows the state when it moves. */
  #slot: SignalSlot | undefined = undefined;

  static {
    moveState = (from) => {
      const to = new RequestAbort();
      to.aborted = from.aborted;
      to.reason = from.reason;
      to.#controller = from.#controller;
      to.#listeners = from.#listeners;
      // Whoever holds the moved state reports the end by calling abort().
      to.#watching = true;
      const slot = from.#slot;
      if (slot !== undefined) {
        slot.abort = to;
        to.#slot = slot;
      }
      return to;
    };
    adoptSlot = (abort, slot) => {
      abort.#slot = slot;
    };
  }

  /** Transports override this to start listening for disconnects; called at most once. */
  protected startWatching(): void {}

  /**
   * The connection has gone to someone who reports its end by calling abort() (a WebSocket): the
   * transport's own watch is not started from now on.
   */
  protected handedOver(): void {
    this.#watching = true;
  }

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

/**
 * Moves a request's abort state out of the host object it is part of (an exchange), to an object of
 * its own that `nsgi.signal` follows: for a request that outlives its exchange, as an open
 * WebSocket's does, so the exchange can be collected. The old object is not to be aborted again.
 */
export function detachAbort(from: RequestAbort): RequestAbort {
  return moveState(from);
}

/**
 * What `nsgi.signal` holds (SPEC §5.6): a stand-in for the request's AbortSignal, since making a
 * real one per request, or an accessor per environ, is dear (bench/NOTES.md). `aborted` and `reason`
 * are answered from the request's state; anything else creates the real signal and acts on it.
 */
export function lazySignal(abort: RequestAbort): AbortSignal {
  const slot = new SignalSlot(abort);
  adoptSlot(abort, slot);
  return new Proxy(slot, SIGNAL_HANDLER) as unknown as AbortSignal;
}

/** The Proxy's target. `util.inspect()` formats the target of a Proxy, so it prints as the signal would. */
class SignalSlot {
  /** Moves with the state (detachAbort). */
  abort: RequestAbort;
  constructor(abort: RequestAbort) {
    this.abort = abort;
  }
  // Called with the Proxy as `this`.
  [inspect.custom](this: AbortSignal): string {
    return `AbortSignal { aborted: ${this.aborted} }`;
  }
}

const SIGNAL_PROTOTYPE = AbortSignal.prototype;

/** The state a read of `aborted` or `reason` reports; disconnects are watched for from then on. */
function watched(slot: SignalSlot): RequestAbort {
  slot.abort.watch();
  return slot.abort;
}

const SIGNAL_HANDLER: ProxyHandler<SignalSlot> = {
  get(slot, key) {
    if (key === 'aborted') return watched(slot).aborted;
    if (key === 'reason') return watched(slot).reason;
    if (key === Symbol.toStringTag) return 'AbortSignal';
    const signal = slot.abort.signal;
    return Reflect.get(signal, key, signal) as unknown;
  },
  has(slot, key) {
    return key === 'aborted' || key === 'reason' || Reflect.has(slot.abort.signal, key);
  },
  set(slot, key, value) {
    const signal = slot.abort.signal;
    return Reflect.set(signal, key, value, signal);
  },
  getPrototypeOf() {
    return SIGNAL_PROTOTYPE;
  },
  setPrototypeOf() {
    return false;
  },
  ownKeys(slot) {
    return Reflect.ownKeys(slot.abort.signal);
  },
  getOwnPropertyDescriptor(slot, key) {
    return Reflect.getOwnPropertyDescriptor(slot.abort.signal, key);
  },
  defineProperty(slot, key, descriptor) {
    return Reflect.defineProperty(slot.abort.signal, key, descriptor);
  },
  deleteProperty(slot, key) {
    return Reflect.deleteProperty(slot.abort.signal, key);
  },
};
