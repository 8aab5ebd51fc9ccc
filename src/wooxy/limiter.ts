/**
 * The one limiter every Wooxy call in the process goes through. The vendor allows 10 concurrent requests per
 * account, all endpoints together, so delivery and reconciliation must share a single instance: create it once
 * at start-up and hand it to every WooxyClient.
 */
import PQueue from 'p-queue';
import { CdcError, ErrorCodes } from '../errors.js';
import { onAbort } from '../lib/sleep.js';
import { WooxyLimits } from './types.js';

export interface WooxyLimiter {
  /** The effective limit: the configured one, never above the vendor's 10. */
  readonly concurrency: number;
  /** Calls running now (holding a slot). */
  readonly inFlight: number;
  /** Calls waiting for a slot. */
  readonly pending: number;
  /** Runs `task` in a slot; a call still waiting when `signal` aborts rejects at once and never runs. */
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Resolves when nothing runs and nothing waits. */
  onIdle(): Promise<void>;
}

export interface LimiterOptions {
  /** Defaults to the vendor's limit (10); a higher value is lowered to 10, never exceeded. */
  concurrency?: number;
}

export function createLimiter(options: LimiterOptions = {}): WooxyLimiter {
  const configured = options.concurrency ?? WooxyLimits.CONCURRENT_REQUESTS;
  if (!Number.isInteger(configured) || configured < 1) {
    throw new CdcError(ErrorCodes.CONFIG_INVALID, `Wooxy concurrency must be a positive integer, got ${String(configured)}`);
  }
  const concurrency = Math.min(configured, WooxyLimits.CONCURRENT_REQUESTS);
  const queue = new PQueue({ concurrency });
  return {
    concurrency,
    get inFlight() {
      return queue.pending;
    },
    get pending() {
      return queue.size;
    },
    run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      if (signal?.aborted) return Promise.reject(signal.reason as Error);
      // Not p-queue's own `signal` option: it adds a listener per queued call (see abort.ts). An aborted
      // call is rejected at once; its queue entry stays until its turn, then ends without running.
      return new Promise<T>((resolve, reject) => {
        const off = onAbort(signal, () => reject(signal?.reason as Error));
        queue
          .add(() => (signal?.aborted ? Promise.reject(signal.reason as Error) : task()))
          .then(resolve, reject)
          .finally(off);
      });
    },
    onIdle() {
      return queue.onIdle();
    },
  };
}
