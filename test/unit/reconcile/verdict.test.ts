import { describe, expect, it } from 'vitest';
import { verdictFor } from '../../../src/reconcile/apply.js';

const exists = { error: 'ERR_CONTACT_EXISTS', humanError: 'Contact already exists' };
const missing = { error: 'ERR_CONTACT_NOT_EXISTS', humanError: 'No contact found by "10" in list list-1' };

describe('verdictFor: per-contact outcomes of a finished request', () => {
  it('an add told the contact exists becomes an update, an update told it does not an add, at once the first time', () => {
    expect(verdictFor('add', 1, exists)).toMatchObject({ kind: 'retry', hint: 'update', delayMs: 0 });
    expect(verdictFor('update', 1, missing)).toMatchObject({ kind: 'retry', hint: 'add', delayMs: 0 });
    expect(verdictFor('remove', 1, missing)).toEqual({ kind: 'success' });
  });

  it('backs off when the fallback repeats (another contact holds an identifier until its own change lands)', () => {
    // Attempt n waits retryDelayMs(n - 1): 0.5 s·2^(n-1) with jitter, at least half of it.
    const add = verdictFor('add', 3, exists);
    const update = verdictFor('update', 4, missing);
    expect(add).toMatchObject({ kind: 'retry', hint: 'update' });
    expect(update).toMatchObject({ kind: 'retry', hint: 'add' });
    expect(add.kind === 'retry' && add.delayMs).toBeGreaterThanOrEqual(1_000);
    expect(update.kind === 'retry' && update.delayMs).toBeGreaterThanOrEqual(2_000);
  });
});
