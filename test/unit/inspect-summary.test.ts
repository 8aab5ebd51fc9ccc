import { describe, expect, it } from 'vitest';
import { describeChange, payloadDiff } from '../../src/admin/diff.js';
import { summarize, type Inspection } from '../../src/admin/inspect.js';

type Parts = Omit<Inspection, 'summary'>;

const contact = { userId: '7', email: 'ada@example.com', firstName: 'Ada' };
const base: Parts = {
  mapping: 'users',
  key: '7',
  row: { table: 'public.users', keyColumn: 'id', found: true, columns: { id: '7' }, error: null },
  filter: { passes: true, unmet: [] },
  projection: { ok: true, contact },
  wants: contact,
  wooxy: { holds: contact, differences: [] },
  state: null,
  pending: null,
  inflight: null,
  deadLetter: null,
  history: [],
};
const pending = { payload: contact, attempts: 0, enqueuedAt: 't', nextAttemptAt: 't', lastError: null, opHint: null, requestId: null, sentOp: null, sentAt: null, claimedBy: null, claimedUntil: null, maybeIds: null, maybeRemoved: false };

describe('inspect: the answer in one sentence', () => {
  it('in sync, and the two ways of being rightly absent', () => {
    expect(summarize(base)).toBe('in the list; in sync');
    expect(summarize({ ...base, row: { ...base.row, found: false, columns: null }, filter: null, projection: null, wants: null, wooxy: { holds: null, differences: [] } })).toBe(
      'not in the list; as it should be: no row of public.users has id 7',
    );
    expect(summarize({ ...base, filter: { passes: false, unmet: [{ column: 'deleted_at', isNull: true }] }, wants: null, wooxy: { holds: null, differences: [] } })).toBe(
      'not in the list; as it should be: filtered out (deleted_at isNull true)',
    );
  });

  it('out of sync: says what is under way, or that nothing is and what would send it', () => {
    const changed = { ...contact, firstName: 'Ada B.' };
    const behind: Parts = { ...base, wants: changed, wooxy: { holds: contact, differences: payloadDiff(contact, changed) } };
    expect(summarize(behind)).toBe('in the list; Wooxy holds another version (firstName); nothing is queued (wooxy-cdc snapshot --mapping users would send it)');
    expect(summarize({ ...behind, pending: { ...pending, attempts: 2, lastError: 'ERR_SYSTEM_ERROR: try later' } })).toBe(
      'in the list; Wooxy holds another version (firstName); a change waits to be sent (attempt 3, last: ERR_SYSTEM_ERROR: try later)',
    );
    expect(summarize({ ...behind, wooxy: { holds: null, differences: [] }, inflight: { ...pending, requestId: 'r1', sentOp: 'add', sentAt: '2026-11-30T10:00:00.000Z', request: null } })).toBe(
      'not in the list; but should be; request r1 (add) is in flight since 2026-11-30T10:00:00.000Z',
    );
    expect(summarize({ ...base, wants: null, filter: { passes: false, unmet: [{ column: 'status', equals: 'active' }] } })).toBe(
      'in the list; but should not be: filtered out (status equals "active"); nothing is queued (wooxy-cdc snapshot --mapping users would send it)',
    );
  });

  it('a row gone while Wooxy still holds the contact: only a reconciling snapshot removes it', () => {
    expect(summarize({ ...base, row: { ...base.row, found: false, columns: null }, filter: null, projection: null, wants: null })).toBe(
      'in the list; but should not be: no row of public.users has id 7; nothing is queued (wooxy-cdc snapshot --mapping users --reconcile would remove it)',
    );
  });

  it('an invalid row and a dead letter', () => {
    const invalid: Parts = { ...base, projection: { ok: false, problems: ['phoneNumber (column phone): "12" is too short'] }, wants: 'invalid' };
    const dead = { mapping: 'users', key: '7', op: 'add', code: 'ROW_INVALID', message: 'phoneNumber …', attempts: 1, firstSeen: 't', lastSeen: 't', payload: null, blockedBy: null };
    expect(summarize({ ...invalid, deadLetter: dead })).toBe('in the list; the row is invalid; dead letter ROW_INVALID: phoneNumber …');
    // Not dead-lettered yet (the stream has not reached the row): the problem is said here.
    expect(summarize(invalid)).toBe('in the list; the row is invalid: phoneNumber (column phone): "12" is too short');
  });
});

describe('payload differences', () => {
  it('compares field by field, variables one by one, whatever the key order', () => {
    const a = { userId: '1', email: 'a@x.com', variables: [{ name: 'plan', value: 'pro' }, { name: 'tier', value: 'gold' }] };
    const b = { email: 'a@x.com', userId: '1', lastName: 'B', variables: [{ name: 'tier', value: 'gold' }, { name: 'plan', value: 'team' }] };
    expect(payloadDiff(a, b)).toEqual([
      { field: 'lastName', from: undefined, to: 'B' },
      { field: 'variables.plan', from: 'pro', to: 'team' },
    ]);
    expect(payloadDiff(a, { ...a })).toEqual([]);
    expect(payloadDiff(null, { userId: '1' })).toEqual([{ field: 'userId', from: undefined, to: '1' }]);
    expect(describeChange({ field: 'lastName', from: undefined, to: 'B' })).toBe('lastName (none) → "B"');
  });
});
