/**
 * Overlap recording: a contact named by two accepted requests of one list that are both unprocessed. The
 * connector's tests read these counts to prove no contact is ever in two unprocessed requests at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Emulator, EmulatorConfigInput, EmulatorStats } from '../../src/emulator/index.js';
import { LIST_ID, control, post, startEmulator } from '../helpers/emulator.js';

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function start(overrides: Partial<EmulatorConfigInput> = {}): Promise<Emulator> {
  emulator = await startEmulator(overrides);
  return emulator;
}

async function accepted(e: Emulator, endpoint: 'contacts/add' | 'contacts/update' | 'contacts/remove', body: Record<string, unknown>): Promise<string> {
  const answer = await post(e, endpoint, { contactListId: LIST_ID, ...body });
  expect(answer.json, JSON.stringify(answer.json)).toMatchObject({ result: true });
  return answer.json.requestId!;
}

describe('overlaps', () => {
  it('two unprocessed requests naming the same userId are an overlap, in stats() and /_emulator/stats', async () => {
    const e = await start({ processing: { delayMs: 600_000 } });
    const first = await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1' }, { userId: 'u2' }] });
    const second = await accepted(e, 'contacts/update', { contacts: [{ contact: 'u1', userId: 'u1', firstName: 'Ann' }] });
    expect(e.stats().overlaps).toEqual({ count: 1, examples: [{ identifier: 'u1', requestIds: [first, second] }] });
    expect((await control<EmulatorStats>(e, 'GET', '/stats')).json.overlaps).toEqual(e.stats().overlaps);
    // A request naming other contacts overlaps nothing.
    await accepted(e, 'contacts/add', { contacts: [{ userId: 'u3' }] });
    expect(e.stats().overlaps.count).toBe(1);
  });

  it('is not counted once the first request has been processed', async () => {
    const e = await start({ processing: { auto: false } });
    const first = await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1', email: 'ann@example.com' }] });
    expect(e.processNow()).toBe(1);
    expect(e.request(first)?.status).toBe('done');
    await accepted(e, 'contacts/update', { contacts: [{ contact: 'u1', userId: 'u1', lastName: 'Lee' }] });
    await accepted(e, 'contacts/remove', { userIds: ['u9'] });
    expect(e.stats().overlaps).toEqual({ count: 0, examples: [] });
  });

  it('matches by any identifier: email in any case, a remove’s lists, an update’s finder; one count per pair of requests', async () => {
    const e = await start({ processing: { auto: false } });
    const add = await accepted(e, 'contacts/add', { contacts: [{ email: 'Ann@Example.com', phoneNumber: '+3725550001', userId: 'u1' }] });
    // The email, in another case, twice (field and finder): one overlap, the pair.
    const byEmail = await accepted(e, 'contacts/update', { contacts: [{ contact: 'ann@example.com', email: 'ann@example.com' }] });
    const byPhone = await accepted(e, 'contacts/remove', { phoneNumbers: ['+3725550001'] });
    // The finder alone names the contact (by its userId); the phone number it sets is new.
    const byFinder = await accepted(e, 'contacts/update', { contacts: [{ contact: 'u1', phoneNumber: '+3725550002' }] });
    expect(e.stats().overlaps).toEqual({
      count: 3,
      examples: [
        { identifier: 'ann@example.com', requestIds: [add, byEmail] },
        { identifier: '+3725550001', requestIds: [add, byPhone] },
        { identifier: 'u1', requestIds: [add, byFinder] },
      ],
    });
  });

  it('counts only within a list, and reset() clears the count', async () => {
    const e = await start({ processing: { auto: false } });
    e.defineList({ id: 'other', variables: [] });
    await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1' }] });
    const answer = await post(e, 'contacts/add', { contactListId: 'other', contacts: [{ userId: 'u1' }] });
    expect(answer.json.result).toBe(true);
    expect(e.stats().overlaps.count).toBe(0);
    await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1' }] });
    expect(e.stats().overlaps.count).toBe(1);
    e.reset();
    expect(e.stats().overlaps).toEqual({ count: 0, examples: [] });
    // The requests from before the reset are gone: they overlap nothing.
    await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1' }] });
    expect(e.stats().overlaps.count).toBe(0);
  });

  it('rejected calls are not requests: they overlap nothing', async () => {
    const e = await start({ processing: { auto: false }, faults: { next: [{ kind: 'savingError' }] } });
    const saving = await post(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ userId: 'u1' }] });
    expect(saving.status).toBe(500);
    await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1' }] });
    expect(e.stats().overlaps.count).toBe(0);
  });
});
