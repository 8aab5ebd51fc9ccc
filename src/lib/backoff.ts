/**
 * The one backoff of the project: exponential with a cap, and jitter so that many waiters (contacts, calls,
 * reconnecting processes) do not come back at the same instant. Every retry loop computes its delay here.
 */
export interface BackoffPolicy {
  /** The ceiling of the first delay (attempt 0); it doubles per attempt. */
  baseMs: number;
  /** No delay exceeds this. */
  maxMs: number;
  /**
   * `full`: uniform in [0, ceiling] (AWS's "full jitter": spreads a herd best, for calls to a shared API);
   * `equal`: uniform in [ceiling/2, ceiling] (never much shorter than intended, for reconnects and retries
   * whose delay is also a pause).
   */
  jitter: 'full' | 'equal';
}

export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(attempt, 30)));
  const r = random();
  return policy.jitter === 'full' ? Math.floor(r * ceiling) : Math.round(ceiling * (0.5 + r / 2));
}

/** Reconnects and restarts of long-lived loops: min(30 s, 1 s·2^n), never less than half of it. */
export const RECONNECT: BackoffPolicy = { baseMs: 1_000, maxMs: 30_000, jitter: 'equal' };
