/**
 * The client's retry policy. Hand-rolled rather than p-retry: p-retry 6 computes its own delays (node-retry's
 * randomised exponential, not full jitter) and has no way to replace one delay with the server's
 * Retry-After; honouring it would mean sleeping again inside onFailedAttempt, on top of its delay. The loop
 * in client.ts is a dozen lines, and the delay is the project's one backoff (src/lib/backoff.ts).
 */
import { backoffDelay } from '../lib/backoff.js';

export type { Sleep } from '../lib/sleep.js';

export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  maxAttempts: number;
  /** The cap of the first retry's delay; it doubles per attempt. */
  baseDelayMs: number;
  /** No computed delay exceeds this. */
  maxDelayMs: number;
  /** A Retry-After longer than this is cut to it (a misbehaving server cannot park the pipeline for hours). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
};

/**
 * The delay before attempt `failedAttempt + 1`: uniform in [0, min(max, base·2^(n-1))] ("full jitter"), or the
 * server's Retry-After when it sent one — never less than what the server asked for, up to the cap.
 */
export function retryDelay(policy: RetryPolicy, failedAttempt: number, retryAfterMs: number | undefined, random: () => number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return backoffDelay({ baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs, jitter: 'full' }, failedAttempt - 1, random);
}
