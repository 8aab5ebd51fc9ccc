import { describe, expect, it } from 'vitest';
import { decide, type PendingEntry } from '../../../src/delivery/plan.js';

const entry = (over: Partial<PendingEntry>): PendingEntry => ({
  mapping: 'users',
  key: '1',
  payload: null,
  synced: null,
  maybeIds: null,
  maybeRemoved: false,
  hint: null,
  lsn: '0/1',
  attempts: 0,
  ...over,
});
const a = { userId: '1', email: 'a@example.com', firstName: 'Ann' };

describe('decide: the call for one contact, from its desired and synced states', () => {
  it('adds a contact Wooxy does not hold, and updates one it holds, addressed by the identifier it knows (userId first)', () => {
    expect(decide(entry({ payload: a }), false)).toEqual({ op: 'add', contact: a });
    const renamed = { ...a, firstName: 'Anne', email: 'new@example.com' };
    expect(decide(entry({ payload: renamed, synced: a }), false)).toEqual({ op: 'update', contact: renamed, address: { kind: 'userId', value: '1' } });
    const noUserId = { email: 'a@example.com', firstName: 'Ann' };
    expect(decide(entry({ payload: { ...noUserId, email: 'b@example.com' }, synced: noUserId }), false)).toMatchObject({ op: 'update', address: { kind: 'email', value: 'a@example.com' } });
  });

  it('skips what Wooxy already holds, and a removal of a contact it never held', () => {
    expect(decide(entry({ payload: { ...a }, synced: a }), false)).toMatchObject({ op: 'skip', reason: 'unchanged' });
    expect(decide(entry({ payload: null, synced: null }), false)).toMatchObject({ op: 'skip', reason: 'not in Wooxy' });
  });

  it('removes by what Wooxy holds, or by the identifiers an unrecorded call may have created', () => {
    expect(decide(entry({ payload: null, synced: a }), false)).toEqual({ op: 'remove', address: { kind: 'userId', value: '1' }, keepPending: false });
    expect(decide(entry({ payload: null, maybeIds: { email: 'a@example.com' } }), false)).toEqual({ op: 'remove', address: { kind: 'email', value: 'a@example.com' }, keepPending: false });
  });

  it('clears an identifier by removing, then adding (Wooxy cannot clear one with an update)', () => {
    const withPhone = { ...a, phoneNumber: '+15555550001' };
    expect(decide(entry({ payload: a, synced: withPhone }), false)).toEqual({ op: 'remove', address: { kind: 'userId', value: '1' }, keepPending: true });
  });

  it('a contact that may have been removed unrecorded is never "unchanged": it is removed again (a no-op if it was) and added', () => {
    expect(decide(entry({ payload: { ...a }, synced: a, maybeRemoved: true }), false)).toEqual({ op: 'remove', address: { kind: 'userId', value: '1' }, keepPending: true });
    // Once that remove is recorded, the add follows.
    expect(decide(entry({ payload: a, synced: a, maybeRemoved: true, hint: 'add' }), false)).toEqual({ op: 'add', contact: a });
    // Absent as far as we know: nothing to undo.
    expect(decide(entry({ payload: a, synced: null, maybeRemoved: true }), false)).toEqual({ op: 'add', contact: a });
  });

  it('follows the hints the last answer left: update after "exists", add after "not exists", replace to break a cycle', () => {
    expect(decide(entry({ payload: a, hint: 'update' }), false)).toEqual({ op: 'update', contact: a, address: { kind: 'userId', value: '1' } });
    expect(decide(entry({ payload: a, synced: { ...a, firstName: 'x' }, hint: 'add' }), false)).toEqual({ op: 'add', contact: a });
    expect(decide(entry({ payload: a, synced: { ...a, firstName: 'x' }, hint: 'replace' }), false)).toMatchObject({ op: 'remove', keepPending: true });
  });

  it('with upsert, a contact not known to be in Wooxy is updated (upsert:true) instead of added', () => {
    expect(decide(entry({ payload: a }), true)).toEqual({ op: 'update', contact: a, address: { kind: 'userId', value: '1' } });
    expect(decide(entry({ payload: a, hint: 'add' }), true)).toEqual({ op: 'add', contact: a });
  });
});
