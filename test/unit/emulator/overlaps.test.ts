/** The overlap tracker's matching rules and bookkeeping, without HTTP. */
import { describe, expect, it } from 'vitest';
import { MAX_OVERLAP_EXAMPLES, OverlapTracker, namedIdentifiers } from '../../../src/emulator/overlaps.js';

type Req = Parameters<OverlapTracker['accepted']>[0];
const req = (id: string, endpoint: Req['endpoint'], body: Record<string, unknown>, listId = 'L'): Req => ({ id, listId, endpoint, body });

describe('namedIdentifiers', () => {
  it('add: each contact’s identifiers; empty strings name nothing; emails keyed case-insensitively', () => {
    const named = namedIdentifiers(req('a', 'contacts/add', { contacts: [{ userId: 'u1', email: 'A@X.com', phoneNumber: '' }, { email: 'a@x.com' }] }));
    expect([...named]).toEqual([
      ['userId:u1', 'u1'],
      ['email:a@x.com', 'A@X.com'],
    ]);
  });

  it('update: the finder may be any kind of identifier, so it is keyed as all three', () => {
    const named = namedIdentifiers(req('a', 'contacts/update', { contacts: [{ contact: 'Ann@x.com', userId: 'u1' }] }));
    expect([...named.keys()]).toEqual(['userId:u1', 'userId:Ann@x.com', 'email:ann@x.com', 'phoneNumber:Ann@x.com']);
  });

  it('remove: its emails, phone numbers and userIds', () => {
    const named = namedIdentifiers(req('a', 'contacts/remove', { emails: ['e@x.com', ''], phoneNumbers: ['+3725550001'], userIds: null }));
    expect([...named.keys()]).toEqual(['email:e@x.com', 'phoneNumber:+3725550001']);
  });
});

describe('OverlapTracker', () => {
  it('counts a pair once, forgets settled requests, and keeps at most MAX_OVERLAP_EXAMPLES examples', () => {
    const t = new OverlapTracker();
    t.accepted(req('a', 'contacts/add', { contacts: [{ userId: 'u1' }, { userId: 'u2' }] }));
    t.accepted(req('b', 'contacts/update', { contacts: [{ contact: 'u1', userId: 'u2' }] }));
    expect(t.stats()).toEqual({ count: 1, examples: [{ identifier: 'u2', requestIds: ['a', 'b'] }] });
    t.settled('a');
    t.settled('b');
    t.accepted(req('c', 'contacts/add', { contacts: [{ userId: 'u1' }] }));
    expect(t.stats().count).toBe(1);

    for (let i = 0; i < MAX_OVERLAP_EXAMPLES + 5; i++) t.accepted(req(`d${i}`, 'contacts/remove', { userIds: ['u1'] }, `list-${i}`));
    for (let i = 0; i < MAX_OVERLAP_EXAMPLES + 5; i++) t.accepted(req(`e${i}`, 'contacts/remove', { userIds: ['u1'] }, `list-${i}`));
    expect(t.stats().count).toBe(1 + MAX_OVERLAP_EXAMPLES + 5);
    expect(t.stats().examples).toHaveLength(MAX_OVERLAP_EXAMPLES);

    t.reset();
    expect(t.stats()).toEqual({ count: 0, examples: [] });
  });
});
