import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/loader.js';
import { exceedsGuard, guardOff, holdMessage, likelyCause, removalAllowance } from '../../src/outbox/removal-guard.js';

const defaults = { removePercent: 10, minRemovals: 100 };

describe('mass-removal guard arithmetic', () => {
  it('holds only what is more than minRemovals and more than removePercent of the synced contacts', () => {
    expect(exceedsGuard(200, 200, defaults)).toBe(true); // a TRUNCATE of 200
    expect(exceedsGuard(20, 20, defaults)).toBe(false); // a TRUNCATE of 20: 100%, but not more than 100
    expect(exceedsGuard(100, 100, defaults)).toBe(false); // more than, not as many as
    expect(exceedsGuard(101, 101, defaults)).toBe(true);
    expect(exceedsGuard(200, 2000, defaults)).toBe(false); // exactly 10%
    expect(exceedsGuard(201, 2000, defaults)).toBe(true);
    expect(exceedsGuard(150, 1_000_000, defaults)).toBe(false); // a busy day on a large list
    expect(exceedsGuard(101, 0, defaults)).toBe(true); // removals of contacts Wooxy may hold, none confirmed
  });

  it('takes fractional percentages', () => {
    expect(exceedsGuard(51, 10_000, { removePercent: 0.5, minRemovals: 50 })).toBe(true);
    expect(exceedsGuard(50, 10_000, { removePercent: 0.5, minRemovals: 10 })).toBe(false);
  });

  it('is off when either limit is 0', () => {
    for (const s of [{ removePercent: 0, minRemovals: 100 }, { removePercent: 10, minRemovals: 0 }, { removePercent: 0, minRemovals: 0 }]) {
      expect(guardOff(s)).toBe(true);
      expect(exceedsGuard(1_000_000, 1_000_000, s)).toBe(false);
    }
    expect(guardOff(defaults)).toBe(false);
  });

  it('stops counting early only where no hold can be: every count that exceeds is above the allowance', () => {
    fc.assert(
      fc.property(
        fc.nat(5_000_000),
        fc.double({ min: 0.01, max: 100, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.nat(2_000_000),
        (synced, removePercent, minRemovals, waiting) => {
          const s = { removePercent, minRemovals };
          if (exceedsGuard(waiting, synced, s)) expect(waiting).toBeGreaterThan(removalAllowance(synced, s));
        },
      ),
      { numRuns: 2_000 },
    );
    // And it is tight where the arithmetic is exact: 10% of 5,000 allows 500, and 501 is the first hold.
    expect(removalAllowance(5_000, defaults)).toBeGreaterThanOrEqual(499);
    expect(exceedsGuard(501, 5_000, defaults)).toBe(true);
  });

  it('names the likely cause: a TRUNCATE, else deletes and rows that left the filter', () => {
    expect(likelyCause({ waiting: 300, deleted: 300 }, 'public.users', 'truncate')).toBe('TRUNCATE of public.users');
    expect(likelyCause({ waiting: 300, deleted: 300 }, 'public.users', 'sweep')).toMatch(/^a reconciliation found the rows of 300 contact\(s\) gone from public\.users/);
    expect(likelyCause({ waiting: 300, deleted: 300 })).toMatch(/^300 row\(s\) deleted at the source/);
    expect(likelyCause({ waiting: 300, deleted: 0 })).toMatch(/^300 row\(s\) no longer match the mapping's filter/);
    expect(likelyCause({ waiting: 300, deleted: 100 })).toMatch(/^100 row\(s\) deleted .*; 200 row\(s\) no longer match/);
  });

  it('says the count, the share, the limits, the cause and the command in one line', () => {
    const line = holdMessage({ mapping: 'users', contacts: 200, synced: 250, cause: 'TRUNCATE of public.users' }, { contactListId: 'crm', guard: defaults });
    expect(line).toBe(
      'removals of mapping users held: 200 contact(s) would leave Wooxy list crm, 80% of its 250 synced contact(s) (the guard holds more than 100 and more than 10%); ' +
        'likely cause: TRUNCATE of public.users. Adds and updates go on. Review: wooxy-cdc removals list --mapping users --config FILE, then approve or discard',
    );
  });
});

describe('guard configuration', () => {
  const base = {
    postgres: { url: 'postgres://x@localhost/db' },
    wooxy: { accessToken: 't' },
    mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id' } }],
  };

  it('defaults to 10% and 100 contacts per mapping, and takes numbers from the environment', () => {
    expect(parseConfig(base, {}).mappings[0]!.guard).toEqual(defaults);
    const set = parseConfig({ ...base, mappings: [{ ...base.mappings[0], guard: { removePercent: '${PCT}', minRemovals: 0 } }] }, { PCT: '2.5' });
    expect(set.mappings[0]!.guard).toEqual({ removePercent: 2.5, minRemovals: 0 });
  });

  it('refuses percentages outside 0–100, negative counts and unknown keys, by path', () => {
    const bad = (guard: unknown) => () => parseConfig({ ...base, mappings: [{ ...base.mappings[0], guard }] }, {});
    expect(bad({ removePercent: 101 })).toThrow(/mappings\[0\]\.guard\.removePercent/);
    expect(bad({ minRemovals: -1 })).toThrow(/mappings\[0\]\.guard\.minRemovals/);
    expect(bad({ minRemovals: 1.5 })).toThrow(/mappings\[0\]\.guard\.minRemovals/);
    expect(bad({ percent: 5 })).toThrow(/mappings\[0\]\.guard/);
  });
});
