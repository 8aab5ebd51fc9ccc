/**
 * The project's two ways to wait: `sleep` gives up with an AbortSignal (rejecting with its reason), and a
 * `Waiter` is a sleep that its owner can cut short (`wake`) when there is something to do or it stops.
 */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** One real 'abort' listener per signal, however many sleeps wait on it (see onAbort). */
const waiters = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `callback` when `signal` aborts; returns the function that unsubscribes. The connector hands one
 * shutdown signal to every call; with hundreds queued or sleeping, a listener each trips Node's
 * MaxListenersExceededWarning (seen at 3 000 calls) and costs a closure per call on the signal.
 */
export function onAbort(signal: AbortSignal | undefined, callback: () => void): () => void {
  if (!signal) return () => undefined;
  let set = waiters.get(signal);
  if (!set) {
    const callbacks = new Set<() => void>();
    set = callbacks;
    waiters.set(signal, callbacks);
    signal.addEventListener(
      'abort',
      () => {
        for (const cb of [...callbacks]) cb();
        callbacks.clear();
      },
      { once: true },
    );
  }
  const callbacks = set;
  callbacks.add(callback);
  return () => void callbacks.delete(callback);
}

export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const off = onAbort(signal, () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    });
    const timer = setTimeout(() => {
      off();
      resolve();
    }, ms);
  });

/** A sleep its owner can end early. One waiter, one sleep at a time. */
export class Waiter {
  #wake: (() => void) | null = null;
  #woken = false;

  /** Resolves after `ms`, or at once when woken (also when woken before it was called). */
  wait(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.#wake = done;
    });
  }

  /** Ends the current wait; with none running, the next wait returns at once. */
  wake(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }
}
