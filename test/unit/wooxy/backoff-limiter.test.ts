/** The delay policy and the limiter's clamping, without HTTP. */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../../src/lib/sleep.js';
import { DEFAULT_RETRY_POLICY, createLimiter, retryDelay, type RetryPolicy } from '../../../src/wooxy/index.js';
import { waitFor } from '../../helpers/wait.js';

const policy: RetryPolicy = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1_000, maxRetryAfterMs: 5_000 };

describe('retryDelay', () => {
  it('full jitter: uniform under a ceiling that doubles per attempt and stops at maxDelayMs', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(policy, n, undefined, () => 0.9999))).toEqual([99, 199, 399, 799, 999]);
    expect(retryDelay(policy, 3, undefined, () => 0)).toBe(0);
  });

  it('a Retry-After replaces the computed delay, up to maxRetryAfterMs', () => {
    expect(retryDelay(policy, 1, 2_500, () => 0)).toBe(2_500);
    expect(retryDelay(policy, 1, 60_000, () => 0)).toBe(5_000);
  });

  it('defaults are sane', () => {
    expect(DEFAULT_RETRY_POLICY.maxAttempts).toBeGreaterThan(1);
    expect(DEFAULT_RETRY_POLICY.maxDelayMs).toBeGreaterThan(DEFAULT_RETRY_POLICY.baseDelayMs);
  });
});

describe('createLimiter', () => {
  it('lower if configured, never higher than the vendor’s 10', () => {
    expect(createLimiter().concurrency).toBe(10);
    expect(createLimiter({ concurrency: 3 }).concurrency).toBe(3);
    expect(createLimiter({ concurrency: 500 }).concurrency).toBe(10);
    expect(() => createLimiter({ concurrency: 0 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => createLimiter({ concurrency: 2.5 })).toThrow(/positive integer/);
  });

  it('exposes inFlight and pending', async () => {
    const limiter = createLimiter({ concurrency: 2 });
    const releases: (() => void)[] = [];
    const tasks = Array.from({ length: 5 }, () => limiter.run(() => new Promise<void>((resolve) => releases.push(resolve))));
    expect([limiter.inFlight, limiter.pending]).toEqual([2, 3]);
    releases[0]!();
    await tasks[0];
    await waitFor(() => releases.length === 3, { message: 'the third task started' });
    expect([limiter.inFlight, limiter.pending]).toEqual([2, 2]);
    for (let i = 1; i < 5; i++) {
      await waitFor(() => releases.length > i, { message: `task ${i} started` });
      releases[i]!();
    }
    await Promise.all(tasks);
    await limiter.onIdle();
    expect([limiter.inFlight, limiter.pending]).toEqual([0, 0]);
  });

  it('a queued call whose signal aborts is rejected at once and never runs', async () => {
    const limiter = createLimiter({ concurrency: 1 });
    let release!: () => void;
    const running = limiter.run(() => new Promise<void>((resolve) => (release = resolve)));
    const controller = new AbortController();
    let ran = false;
    const queued = limiter.run(async () => void (ran = true), controller.signal);
    controller.abort(new Error('stop'));
    await expect(queued).rejects.toThrow('stop');
    release();
    await running;
    await limiter.onIdle();
    expect(ran).toBe(false);
    await expect(limiter.run(async () => 1, controller.signal)).rejects.toThrow('stop');
  });

  it('one signal shared by many waiting calls adds one listener, not one per call', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const limiter = createLimiter({ concurrency: 1 });
      const controller = new AbortController();
      let release!: () => void;
      const first = limiter.run(() => new Promise<void>((resolve) => (release = resolve)), controller.signal);
      const queued = Array.from({ length: 50 }, () => limiter.run(async () => undefined, controller.signal));
      const sleeping = Array.from({ length: 50 }, () => sleep(60_000, controller.signal));
      controller.abort(new Error('shutdown'));
      for (const p of [first, ...queued, ...sleeping]) await expect(p).rejects.toThrow('shutdown');
      release();
      await limiter.onIdle();
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
