import { describe, expect, it } from 'vitest';
import { orderMoves, type PendingEntry } from '../../../src/delivery/plan.js';

/** A contact that Wooxy knows with `had` and that now wants `wants` (emails). */
const entry = (key: string, had: string, wants: string): PendingEntry => ({
  mapping: 'users',
  key,
  payload: { userId: key, email: wants },
  synced: { userId: key, email: had },
  maybeIds: null,
  maybeRemoved: false,
  hint: null,
  lsn: '0/1',
  attempts: 0,
});
const k = (key: string) => `users\u0000${key}`;

describe('orderMoves: identifiers moving between contacts', () => {
  it('a contact that wants an email another gives up waits for it', () => {
    const { deferred, replace } = orderMoves([entry('1', 'a@x.io', 'b@x.io'), entry('2', 'b@x.io', 'c@x.io')]);
    expect([...deferred]).toEqual([k('1')]);
    expect([...replace]).toEqual([]);
  });

  it('two contacts swapping emails: the lower key is replaced, the other waits', () => {
    const { deferred, replace } = orderMoves([entry('1', 'a@x.io', 'b@x.io'), entry('2', 'b@x.io', 'a@x.io')]);
    expect([...replace]).toEqual([k('1')]);
    expect([...deferred]).toEqual([k('2')]);
  });

  it('three contacts passing their emails round: one is replaced, so the cycle cannot wait forever', () => {
    // 4 wants 8's email, 8 wants 5's, 5 wants 4's: no two wait for each other, all three wait.
    const { deferred, replace } = orderMoves([entry('4', 'e4', 'e8'), entry('5', 'e5', 'e4'), entry('8', 'e8', 'e5')]);
    expect([...replace]).toEqual([k('4')]);
    expect([...deferred].sort()).toEqual([k('5'), k('8')]);
  });

  it('a chain waiting on a cycle defers, and each of two cycles gets its own replacement', () => {
    const { deferred, replace } = orderMoves([
      entry('1', 'a', 'b'),
      entry('2', 'b', 'c'),
      entry('3', 'c', 'a'),
      entry('7', 'z', 'a'),
      entry('8', 'p', 'q'),
      entry('9', 'q', 'p'),
    ]);
    expect([...replace].sort()).toEqual([k('1'), k('8')]);
    expect([...deferred].sort()).toEqual([k('2'), k('3'), k('7'), k('9')]);
  });
});
