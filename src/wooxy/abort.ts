/**
 * One real 'abort' listener per signal, however many calls wait on it. The connector hands one shutdown
 * signal to every call; with hundreds queued or sleeping, a listener each trips Node's
 * MaxListenersExceededWarning (seen at 3 000 calls) and costs a closure per call on the signal.
 */
const waiters = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `callback` when `signal` aborts; returns the function that unsubscribes. */
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
