/**
 * The proof that one shared limiter keeps the process within the vendor's 10 concurrent requests: fire 200
 * calls at once through clients sharing it, with latency on the emulator so calls overlap, and read the
 * emulator's own peak-concurrency count. A control run without the limiter shows the count would catch a
 * violation.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { WooxyClient, createLimiter, type WooxyLimiter } from '../../src/wooxy/index.js';
import { LIST_ID, TOKEN, post, startEmulator } from '../helpers/emulator.js';

let emulator: Emulator;
beforeAll(async () => {
  // 50 ms per call: long enough that ten calls overlap even on a loaded machine, short enough to stay fast.
  emulator = await startEmulator({ processing: { auto: false }, faults: { latencyMs: 50, latencyJitterMs: 10 } });
});
afterAll(() => emulator.close());
beforeEach(() => emulator.reset());

/** 200 calls at once, mixed across endpoints, through two clients sharing one limiter (as delivery and reconciliation will). */
async function fire(limiter: WooxyLimiter): Promise<void> {
  const options = { accessToken: TOKEN, baseUrl: emulator.url, limiter, retry: { maxAttempts: 1 } };
  const delivery = new WooxyClient(options);
  const reconcile = new WooxyClient(options);
  let peakInFlight = 0;
  const calls = Array.from({ length: 200 }, (_, i) => {
    const call =
      i % 4 === 3
        ? reconcile.find([`id${i}`])
        : delivery.add({ contactListId: LIST_ID, contacts: [{ userId: `u${i}` }] });
    peakInFlight = Math.max(peakInFlight, limiter.inFlight);
    return call;
  });
  expect(limiter.pending + limiter.inFlight).toBeGreaterThan(150);
  await Promise.all(calls);
  expect(peakInFlight).toBeLessThanOrEqual(limiter.concurrency);
  expect(limiter.inFlight + limiter.pending).toBe(0);
}

describe('the shared limiter', () => {
  it('never lets more than 10 calls be in flight (default), and does use all 10', async () => {
    const limiter = createLimiter();
    expect(limiter.concurrency).toBe(10);
    await fire(limiter);
    const stats = emulator.stats();
    expect(stats.requests).toBe(200);
    expect(stats.rejectedConcurrency).toBe(0);
    expect(stats.peakConcurrency).toBe(10);
  });

  it('a configured lower limit (3) is the ceiling', async () => {
    const limiter = createLimiter({ concurrency: 3 });
    await fire(limiter);
    expect(emulator.stats()).toMatchObject({ requests: 200, peakConcurrency: 3, rejectedConcurrency: 0 });
  });

  it('a configured higher limit (50) is lowered to 10', async () => {
    const limiter = createLimiter({ concurrency: 50 });
    expect(limiter.concurrency).toBe(10);
    await fire(limiter);
    expect(emulator.stats()).toMatchObject({ peakConcurrency: 10, rejectedConcurrency: 0 });
  });

  it('control: the same burst without the limiter breaks the vendor limit, and the emulator says so', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, () => post(emulator, 'request/find', { ids: ['x'] })));
    const stats = emulator.stats();
    expect(stats.peakConcurrency).toBeGreaterThan(10);
    expect(stats.rejectedConcurrency).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(stats.rejectedConcurrency);
  });
});
