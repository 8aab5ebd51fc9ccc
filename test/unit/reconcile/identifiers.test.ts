import { describe, expect, it } from 'vitest';
import { resultRows } from '../../../src/reconcile/apply.js';
import { blockerOf, settleTaken } from '../../../src/reconcile/identifiers.js';
import type { Holder } from '../../../src/store/identifiers.js';
import type { InflightEntry, ResultRow } from '../../../src/store/results.js';
import type { RequestStatus } from '../../../src/wooxy/types.js';

const EXISTS = 'A contact with email user10@example.com already exists in list list-1';

const entry = (key: string, payload: Record<string, string>, op: InflightEntry['sent_op'] = 'add', attempts = 0): InflightEntry => ({
  mapping: 'users',
  source_key: key,
  payload,
  sent_op: op,
  lsn: '0/1',
  attempts,
  maybe_ids: null,
});

const status = (errors: RequestStatus['results']['errors'], success: RequestStatus['results']['success'] = []): RequestStatus => ({
  id: 'r1',
  source: 'API_CREATE',
  status: 'done',
  webHookUri: null,
  createdAt: '2026-01-01 00:00:00',
  updatedAt: '2026-01-01 00:00:00',
  results: { errors, success },
});

const holder = (key: string, synced: Record<string, string>, desired: Record<string, string> | null = synced): Holder => ({ mapping: 'users', key, synced, desired: desired ?? {} });

/** The row of user 2006, refused because user 10's email is on it. */
function refused(op: 'add' | 'update' = 'add', attempts = 0, maxAttempts = 8): ResultRow {
  const e = entry('2006', { userId: '2006', email: 'user10@example.com' }, op, attempts);
  const error = op === 'add' ? 'ERR_CONTACT_EXISTS' : 'ERR_CONTACT_DUPLICATION_ATTEMPT';
  const [row] = resultRows(status([{ error, contact: { id: null, userId: '2006', email: 'user10@example.com', phone: null }, humanError: EXISTS }]), [e], maxAttempts);
  return row!;
}

describe('resultRows asks who holds an identifier only when Wooxy says another contact has it', () => {
  it('marks ERR_CONTACT_EXISTS and ERR_CONTACT_DUPLICATION_ATTEMPT with the identifiers the contact wants', () => {
    expect(refused('add').want).toEqual({ userId: '2006', email: 'user10@example.com' });
    expect(refused('update').want).toEqual({ userId: '2006', email: 'user10@example.com' });
  });

  it('does not for other answers', () => {
    const e = entry('3', { userId: '3', email: 'x@example.com' }, 'update');
    const [missing] = resultRows(status([{ error: 'ERR_CONTACT_NOT_EXISTS', contact: { id: null, userId: '3', email: null, phone: null }, humanError: 'No contact found by "3"' }]), [e], 8);
    const [ok] = resultRows(status([], [{ id: 'c1', userId: '3', email: 'x@example.com', phone: null }]), [e], 8);
    expect(missing!.want).toBeNull();
    expect(ok!.want).toBeNull();
  });
});

describe('blockerOf', () => {
  it('finds the contact whose synced state holds the identifier, emails in any case', () => {
    expect(blockerOf('2006', { email: 'User10@Example.com' }, [holder('10', { userId: '10', email: 'user10@example.com' })])).toEqual({
      key: '10',
      field: 'email',
      value: 'User10@Example.com',
      moving: false,
    });
    // Phone numbers and userIds match exactly.
    expect(blockerOf('2', { phoneNumber: '+15550001' }, [holder('1', { phoneNumber: '+15550002' })])).toBeNull();
  });

  it('never names the contact itself', () => {
    expect(blockerOf('10', { email: 'user10@example.com' }, [holder('10', { email: 'user10@example.com' })])).toBeNull();
  });

  it('prefers a holder that still wants the identifier over one giving it up', () => {
    const holders = [holder('7', { email: 'a@example.com' }, { email: 'new7@example.com' }), holder('8', { phoneNumber: '+15550008' })];
    expect(blockerOf('9', { email: 'a@example.com', phoneNumber: '+15550008' }, holders)).toMatchObject({ key: '8', field: 'phoneNumber', moving: false });
    expect(blockerOf('9', { email: 'a@example.com' }, holders)).toMatchObject({ key: '7', field: 'email', moving: true });
  });
});

describe('settleTaken', () => {
  it('dead-letters at once, naming the holder and the identifier and keeping Wooxy message, when the holder still wants it', () => {
    const [row] = settleTaken([refused('add')], [holder('10', { userId: '10', email: 'user10@example.com' })]);
    expect(row).toMatchObject({
      kind: 'dead',
      code: 'IDENTIFIER_TAKEN',
      human: `email user10@example.com is held by users/10 (Wooxy: ERR_CONTACT_EXISTS: ${EXISTS})`,
      blocked: { key: '10', field: 'email', value: 'user10@example.com' },
      hint: null,
    });
  });

  it('keeps the fallback when no contact of ours holds it (Wooxy knows it from elsewhere)', () => {
    const row = refused('add');
    expect(settleTaken([row], [])).toEqual([row]);
    expect(row).toMatchObject({ kind: 'retry', hint: 'update' });
  });

  it('waits for a holder giving the identifier up (a move), and names it once the attempts run out', () => {
    const moving = holder('10', { userId: '10', email: 'user10@example.com' }, { userId: '10', email: 'new10@example.com' });
    const waiting = refused('update', 1);
    expect(settleTaken([waiting], [moving])).toEqual([waiting]);
    expect(waiting.kind).toBe('retry');
    const [exhausted] = settleTaken([refused('update', 7, 8)], [moving]);
    expect(exhausted).toMatchObject({ kind: 'dead', code: 'IDENTIFIER_TAKEN', blocked: { key: '10', field: 'email' } });
    expect(exhausted!.human).toMatch(/^email user10@example\.com is held by users\/10, which is giving it up but has not yet at Wooxy \(Wooxy: ERR_CONTACT_DUPLICATION_ATTEMPT: /);
  });

  it('leaves rows that asked nothing alone, and holders of other mappings out', () => {
    const other: Holder = { mapping: 'admins', key: '10', synced: { email: 'user10@example.com' }, desired: { email: 'user10@example.com' } };
    const row = refused('add');
    expect(settleTaken([row], [other])).toEqual([row]);
    const plain = { ...row, want: null };
    expect(settleTaken([plain], [holder('10', { email: 'user10@example.com' })])).toEqual([plain]);
  });
});
