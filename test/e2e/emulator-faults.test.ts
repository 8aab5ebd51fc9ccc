/**
 * Faults that imitate a service that misbehaves without breaking the contract outright: a stalled call that
 * Wooxy finishes after its client gave up (and that keeps counting toward the concurrency limit until then),
 * and an undocumented `result:false` answer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Emulator, EmulatorConfigInput } from '../../src/emulator/index.js';
import { WooxyClient, WooxyError, createLimiter } from '../../src/wooxy/index.js';
import type { Endpoint } from '../../src/wooxy/types.js';
import { LIST_ID, TOKEN, control, post, startEmulator } from '../helpers/emulator.js';
import { waitFor } from '../helpers/wait.js';

let emulator: Emulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function start(overrides: Partial<EmulatorConfigInput> = {}): Promise<Emulator> {
  emulator = await startEmulator(overrides);
  return emulator;
}

/** A call whose client gives up after `timeoutMs`; resolves to the error it failed with (or the status). */
function postGivingUp(e: Emulator, endpoint: Endpoint, body: unknown, timeoutMs: number): Promise<unknown> {
  return fetch(`${e.url}/${endpoint}`, {
    method: 'POST',
    headers: { 'Access-Token': TOKEN, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  }).then(
    (res) => res.status,
    (err: unknown) => err,
  );
}

describe('stall', () => {
  it('a stalled add outlives its client: it counts toward the limit until the stall ends, then is applied', async () => {
    const e = await start({ faults: { stallMs: 3_000, next: [{ kind: 'stall', count: 1, endpoint: 'contacts/add' }] } });
    const gaveUp = await postGivingUp(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ userId: 'late-1' }] }, 100);
    expect(gaveUp).toMatchObject({ name: 'TimeoutError' });
    // The emulator has seen the client go, and still counts the call: Wooxy is working on it.
    await waitFor(() => e.stats().stalls.clientGone === 1, { message: 'the client’s close seen by the emulator' });
    expect(e.stats()).toMatchObject({ inFlight: 1, stalls: { held: 1, clientGone: 1 } });
    expect(e.requestLog()).toEqual([]);

    // So ten more concurrent calls make eleven: the last is refused.
    e.setFaults({ latencyMs: 300 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(e, 'request/find', { ids: ['x'] })));
    expect(answers.map((a) => a.status).sort()).toEqual([...Array<number>(9).fill(404), 429]);
    expect(e.stats()).toMatchObject({ peakConcurrency: 11, rejectedConcurrency: 1, inFlight: 1 });
    expect(e.contacts(LIST_ID)).toEqual([]);

    // idle() waits for the stall; by then the add has been accepted and processed — late.
    await e.idle(10_000);
    expect(e.contacts(LIST_ID)).toEqual([expect.objectContaining({ userId: 'late-1' })]);
    expect(e.stats()).toMatchObject({ inFlight: 0, stalls: { held: 0, clientGone: 0 } });
    const [stalled] = e.requestLog().filter((r) => r.endpoint === 'contacts/add');
    expect(stalled).toMatchObject({ outcome: 'stalled', verdict: 'accepted', httpStatus: null, stalledMs: 3_000, contactCount: 1 });
    expect(e.request(stalled!.requestId!)).toMatchObject({ status: 'done', results: { success: [expect.objectContaining({ userId: 'late-1' })] } });
    expect(e.stats().byEndpoint['contacts/add']).toEqual({ stalled: 1 });
  });

  it('a stalled call whose client gave up and that fails validation is logged without a requestId, and nothing is queued', async () => {
    const e = await start({ faults: { stallMs: 300, next: [{ kind: 'stall', endpoint: 'contacts/add' }] } });
    expect(await postGivingUp(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ email: 'not-an-email' }] }, 50)).toMatchObject({ name: 'TimeoutError' });
    await e.idle(10_000);
    expect(e.requestLog()).toEqual([
      expect.objectContaining({ outcome: 'stalled', verdict: 'validation', requestId: null, errors: ['invalid RFC2822 email not-an-email at email field'] }),
    ]);
    expect(e.stats().processing).toMatchObject({ pending: 0, processed: 0 });
  });

  it('a client that waits long enough gets the usual answer, late; the log says how long it was held', async () => {
    const e = await start({ faults: { stallRate: 1, stallMs: 150 } });
    const sent = performance.now();
    const add = await post(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ userId: 'u1' }] });
    expect(performance.now() - sent).toBeGreaterThanOrEqual(140);
    expect(add.json).toEqual({ result: true, requestId: expect.stringMatching(/^[0-9a-f]{24}$/), errors: [] });
    const find = await post(e, 'request/find', { ids: ['nope'] });
    expect(find.json).toEqual({ result: false, errors: ['No matches found'] });
    expect(e.requestLog().map((r) => [r.endpoint, r.outcome, r.stalledMs, r.requestId])).toEqual([
      ['contacts/add', 'accepted', 150, add.json.requestId],
      ['request/find', 'noMatches', 150, null],
    ]);
    expect(e.stats().inFlight).toBe(0);
  });

  it('the request log names every request the emulator stored, those whose client never learnt the id included', async () => {
    const e = await start({ requestLogLimit: 1_000_000, faults: { stallMs: 200, next: [{ kind: 'stall', endpoint: 'contacts/add' }] } });
    expect(await postGivingUp(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ userId: 'u1' }] }, 50)).toMatchObject({ name: 'TimeoutError' });
    const answered = await post(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ userId: 'u2' }] });
    await post(e, 'contacts/add', { contactListId: LIST_ID, contacts: [] });
    await e.idle(10_000);

    const stored = e
      .requestLog()
      .filter((r) => r.outcome === 'accepted' || r.verdict === 'accepted')
      .map((r) => r.requestId!);
    expect(stored).toHaveLength(2);
    expect(stored).toContain(answered.json.requestId);
    for (const id of stored) expect(e.request(id)?.status).toBe('done');
    expect(e.stats().processing.processed).toBe(stored.length);
  });

  it('reset() abandons a stalled call: the connection drops, nothing is queued or logged, nothing counts', async () => {
    const e = await start({ faults: { stallMs: 60_000, next: [{ kind: 'stall' }] } });
    const pending = postGivingUp(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ userId: 'u1' }] }, 30_000);
    await waitFor(() => e.stats().stalls.held === 1, { message: 'stalled' });
    expect((await control(e, 'POST', '/reset')).json).toEqual({ ok: true });
    expect(await pending).toBeInstanceOf(Error);
    expect(e.stats()).toMatchObject({ inFlight: 0, stalls: { held: 0 }, processing: { pending: 0 } });
    expect(e.requestLog()).toEqual([]);
    await e.idle(1_000);
  });
});

describe('undocumented', () => {
  it('answers 200 result:false with a numbered message no page lists; add carries a requestId, find none; nothing is queued', async () => {
    const e = await start({ processing: { auto: false }, faults: { next: [{ kind: 'undocumented', count: 2 }] } });
    const add = await post(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ userId: 'u1' }] });
    expect(add.status).toBe(200);
    expect(add.json).toEqual({ result: false, requestId: expect.stringMatching(/^[0-9a-f]{24}$/), errors: ['Something unexpected happened #1'] });
    const find = await post(e, 'request/find', { ids: ['x'] });
    expect(find.status).toBe(200);
    expect(find.json).toEqual({ result: false, errors: ['Something unexpected happened #2'] });

    expect(e.request(add.json.requestId!)).toBeUndefined();
    expect(e.stats().processing.pending).toBe(0);
    expect(e.requestLog().map((r) => [r.endpoint, r.outcome, r.httpStatus])).toEqual([
      ['contacts/add', 'undocumented', 200],
      ['request/find', 'undocumented', 200],
    ]);
    expect(e.stats().byEndpoint).toMatchObject({ 'contacts/add': { undocumented: 1 }, 'request/find': { undocumented: 1 } });
    // The scripted faults are used up: the next add is accepted.
    expect((await post(e, 'contacts/add', { contactListId: LIST_ID, contacts: [{ userId: 'u1' }] })).json).toMatchObject({ result: true });
  });

  it('comes before validation, so even a valid body gets it; numbering restarts on reset()', async () => {
    const e = await start({ faults: { undocumentedRate: 1 } });
    for (const n of [1, 2]) {
      const answer = await post(e, 'contacts/remove', { contactListId: LIST_ID, userIds: ['u1'] });
      expect(answer.json.errors).toEqual([`Something unexpected happened #${n}`]);
    }
    e.reset();
    e.setFaults({ undocumentedRate: 1 });
    expect((await post(e, 'contacts/remove', { contactListId: LIST_ID, userIds: ['u1'] })).json.errors).toEqual(['Something unexpected happened #1']);
  });

  it('the client reads it as the service’s trouble (WOOXY_UNDOCUMENTED, retried), not as a rejection of the data', async () => {
    const e = await start({ faults: { next: [{ kind: 'undocumented', count: 1 }] } });
    const client = new WooxyClient({ accessToken: TOKEN, baseUrl: e.url, limiter: createLimiter(), retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    const answer = await client.add({ contactListId: LIST_ID, contacts: [{ userId: 'u1' }] });
    expect(answer.attempts).toBe(2);
    e.setFaults({ next: [{ kind: 'undocumented', count: 3 }] });
    const error = await client.add({ contactListId: LIST_ID, contacts: [{ userId: 'u2' }] }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(WooxyError);
    expect(error).toMatchObject({ code: 'WOOXY_UNDOCUMENTED', retryable: true, messages: ['Something unexpected happened #4'] });
  });
});
