import { describe, expect, it } from 'vitest';
import type { SnapshotStatus } from '../../src/admin/status.js';
import { renderSnapshot } from '../../src/cli/status.js';

const base: SnapshotStatus = {
  mapping: 'users',
  finished: false,
  rowsDone: 45_000,
  rowsExpected: 100_000,
  chunksDone: 9,
  lastKey: '45000',
  startedAt: '2026-11-30T08:00:00.000Z',
  updatedAt: '2026-11-30T08:01:00.000Z',
  finishedAt: null,
  secondsSinceUpdate: 12.4,
};

describe('status: snapshot progress for a person', () => {
  it('a snapshot under way: share done, rows, chunks, where it is, how fresh', () => {
    expect(renderSnapshot(base)).toBe('users: 45% — 45,000 of ~100,000 rows, 9 chunks, after key 45000; last chunk 12 s ago');
    // An estimate can be passed before the end: never "100%" until it is finished.
    expect(renderSnapshot({ ...base, rowsDone: 120_000 })).toMatch(/^users: 99% — 120,000 of ~100,000 rows/);
    expect(renderSnapshot({ ...base, rowsExpected: null, rowsDone: 0, chunksDone: 0, lastKey: null })).toBe('users: 0 rows, 0 chunks, not started; last chunk 12 s ago');
  });

  it('a finished snapshot: when, how many rows, how long it took', () => {
    expect(renderSnapshot({ ...base, finished: true, rowsDone: 2_000, chunksDone: 1, finishedAt: '2026-11-30T09:02:03.456Z' })).toBe(
      'users: finished 2026-11-30 09:02:03 UTC, 2,000 rows in 1 chunk (took 1 h 2 min)',
    );
  });
});
