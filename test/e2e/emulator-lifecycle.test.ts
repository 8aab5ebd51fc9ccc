/**
 * The asynchronous side of the emulator: statuses going new → done/fail, per-contact outcomes, webhooks,
 * retention on the movable clock, processing order, and the concurrency limit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Emulator, EmulatorConfigInput } from '../../src/emulator/index.js';
import type { RequestStatus } from '../../src/wooxy/types.js';
import { LIST_ID, TOKEN, control, post, startEmulator, startReceiver, type Receiver } from '../helpers/emulator.js';
import { waitFor } from '../helpers/wait.js';

let emulator: Emulator | undefined;
let receiver: Receiver | undefined;
afterEach(async () => {
  await emulator?.close();
  await receiver?.close();
  emulator = receiver = undefined;
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

async function find(e: Emulator, id: string): Promise<RequestStatus | undefined> {
  const answer = await post(e, 'request/find', { ids: [id] });
  return answer.json.result ? (answer.json.requests?.[id] as RequestStatus) : undefined;
}

/** Accept, process, and return the final status. */
async function run(e: Emulator, endpoint: 'contacts/add' | 'contacts/update' | 'contacts/remove', body: Record<string, unknown>): Promise<RequestStatus> {
  const id = await accepted(e, endpoint, body);
  e.processNow();
  await e.idle();
  const status = await find(e, id);
  expect(status?.status).not.toBe('new');
  return status!;
}

describe('request lifecycle', () => {
  it('a request is new until the processing delay has passed, then done', async () => {
    const e = await start({ processing: { delayMs: 60_000 } });
    const id = await accepted(e, 'contacts/add', { contacts: [{ email: 'a@example.com' }] });
    expect((await find(e, id))?.status).toBe('new');
    e.advanceClock(59_000);
    expect((await find(e, id))?.status).toBe('new');
    e.advanceClock(1_000);
    await waitFor(async () => (await find(e, id))?.status === 'done', { message: 'done' });
    const status = await find(e, id);
    expect(status).toMatchObject({ source: 'API_CREATE', webHookUri: null, results: { errors: [] } });
    expect(status?.results.success).toEqual([{ id: expect.stringMatching(/^[0-9a-f]{24}$/), email: 'a@example.com', phone: null, userId: null }]);
  });

  it('with a short real delay, processing happens on its own', async () => {
    const e = await start({ processing: { delayMs: 30 } });
    const id = await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1' }] });
    await waitFor(async () => (await find(e, id))?.status === 'done', { message: 'processed' });
  });

  it('add with an identifier that exists → ERR_CONTACT_EXISTS, the others are added', async () => {
    const e = await start({ processing: { auto: false } });
    await run(e, 'contacts/add', { contacts: [{ email: 'A@Example.com', userId: 'u1' }] });
    const status = await run(e, 'contacts/add', {
      contacts: [{ email: 'a@example.com' }, { userId: 'u2', phoneNumber: '+3725550001' }, { userId: 'u1' }],
    });
    expect(status.status).toBe('done');
    expect(status.results.errors.map((x) => [x.error, x.contact.email ?? x.contact.userId])).toEqual([
      ['ERR_CONTACT_EXISTS', 'a@example.com'],
      ['ERR_CONTACT_EXISTS', 'u1'],
    ]);
    expect(status.results.errors[0]?.humanError).toMatch(/already exists/);
    expect(status.results.success).toEqual([{ id: expect.any(String), email: null, phone: '+3725550001', userId: 'u2' }]);
    expect(e.contacts(LIST_ID)).toHaveLength(2);
  });

  it('update finds the contact by userId, email or phone; a missing one is ERR_CONTACT_NOT_EXISTS', async () => {
    const e = await start({ processing: { auto: false } });
    await run(e, 'contacts/add', { contacts: [{ userId: 'u1', email: 'a@example.com', phoneNumber: '+3725550001', firstName: 'Ann' }] });
    for (const finder of ['u1', 'a@example.com', '+3725550001']) {
      const status = await run(e, 'contacts/update', { contacts: [{ contact: finder, userId: 'u1', lastName: `by ${finder}` }] });
      expect(status.results.success).toHaveLength(1);
      expect(e.contacts(LIST_ID)?.[0]).toMatchObject({ firstName: 'Ann', lastName: `by ${finder}` });
    }
    const missing = await run(e, 'contacts/update', { contacts: [{ contact: 'nobody', userId: 'nobody' }] });
    expect(missing.results.errors.map((x) => x.error)).toEqual(['ERR_CONTACT_NOT_EXISTS']);
    expect(missing.status).toBe('fail');
    expect(e.contacts(LIST_ID)).toHaveLength(1);
  });

  it('update with upsert creates a missing contact, with the documented defaults', async () => {
    const e = await start({ processing: { auto: false } });
    const status = await run(e, 'contacts/update', { upsert: true, contacts: [{ contact: 'u9', userId: 'u9', emailSubscribe: true, contactGender: 'Female' }] });
    expect(status.results.success).toEqual([{ id: expect.any(String), email: null, phone: null, userId: 'u9' }]);
    expect(e.contacts(LIST_ID)?.[0]).toMatchObject({ userId: 'u9', emailSubscribe: true, active: false, smsSubscribe: false, contactGender: 2 });
  });

  it('an update that would take another contact’s identifier → ERR_CONTACT_DUPLICATION_ATTEMPT, nothing changes', async () => {
    const e = await start({ processing: { auto: false } });
    await run(e, 'contacts/add', { contacts: [{ userId: 'u1', email: 'one@example.com' }, { userId: 'u2', email: 'two@example.com' }] });
    const status = await run(e, 'contacts/update', { contacts: [{ contact: 'u1', userId: 'u1', email: 'two@example.com' }] });
    expect(status.results.errors.map((x) => x.error)).toEqual(['ERR_CONTACT_DUPLICATION_ATTEMPT']);
    expect(e.contacts(LIST_ID)?.map((c) => c.email)).toEqual(['one@example.com', 'two@example.com']);
    // Changing an identifier to a free value is fine, and frees the old one.
    await run(e, 'contacts/update', { contacts: [{ contact: 'u1', userId: 'u1', email: 'uno@example.com' }] });
    const reuse = await run(e, 'contacts/add', { contacts: [{ email: 'one@example.com' }] });
    expect(reuse.results.success).toHaveLength(1);
  });

  it('remove: found contacts go, missing ones are ERR_CONTACT_NOT_EXISTS, an empty one ERR_EMPTY_IDENTIFIERS', async () => {
    const e = await start({ processing: { auto: false } });
    await run(e, 'contacts/add', { contacts: [{ email: 'a@example.com' }, { phoneNumber: '+3725550002' }, { userId: 'u3' }] });
    const status = await run(e, 'contacts/remove', { emails: ['a@example.com', ''], phoneNumbers: ['+3725550002'], userIds: ['u3', 'u4'] });
    expect(status.status).toBe('done');
    expect(status.results.success.map((c) => c.email ?? c.phone ?? c.userId)).toEqual(['a@example.com', '+3725550002', 'u3']);
    expect(status.results.errors.map((x) => [x.error, x.contact.userId ?? x.contact.email])).toEqual([
      ['ERR_EMPTY_IDENTIFIERS', null],
      ['ERR_CONTACT_NOT_EXISTS', 'u4'],
    ]);
    expect(status.source).toBe('API_REMOVE');
    expect(e.contacts(LIST_ID)).toEqual([]);
  });

  it('a variable removed from the list between acceptance and processing → ERR_INVALID_VARIABLE_NAME', async () => {
    const e = await start({ processing: { auto: false } });
    const id = await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1', variables: [{ name: 'signupDate', value: '2024-01-31' }] }] });
    const put = await control(e, 'PUT', `/lists/${LIST_ID}`, { variables: [{ name: 'newVariableName' }] });
    expect(put.status).toBe(200);
    expect(e.lists()).toEqual([{ id: LIST_ID, variables: [{ name: 'newVariableName', type: 'string' }], contacts: 0 }]);
    expect((await control(e, 'GET', '/lists')).json).toEqual(e.lists());
    e.processNow();
    const status = await find(e, id);
    expect(status?.results.errors.map((x) => x.error)).toEqual(['ERR_INVALID_VARIABLE_NAME']);
  });

  it('an injected processing failure fails the request: every contact ERR_SYSTEM_ERROR, nothing stored', async () => {
    const e = await start({ processing: { auto: false }, faults: { processingFailureRate: 1 } });
    const status = await run(e, 'contacts/add', { contacts: [{ userId: 'u1' }, { userId: 'u2' }] });
    expect(status.status).toBe('fail');
    expect(status.results.errors.map((x) => x.error)).toEqual(['ERR_SYSTEM_ERROR', 'ERR_SYSTEM_ERROR']);
    expect(e.contacts(LIST_ID)).toEqual([]);
    expect(e.stats().processing).toMatchObject({ processed: 1, failedRequests: 1, contactsFailed: 2 });
  });
});

describe('webhooks', () => {
  it('the final status is POSTed to webHookUri, the same object request/find returns', async () => {
    receiver = await startReceiver();
    const e = await start();
    const id = await accepted(e, 'contacts/add', { webHookUri: receiver.url, contacts: [{ userId: 'u1' }] });
    await waitFor(() => receiver!.received.length === 1, { message: 'webhook' });
    const [hook] = receiver.received;
    expect(hook?.headers['content-type']).toBe('application/json');
    expect(hook?.body).toEqual(await find(e, id));
    expect(hook?.body).toMatchObject({ id, status: 'done', source: 'API_CREATE', webHookUri: receiver.url });
  });

  it('a failing receiver is retried with backoff until it accepts', async () => {
    receiver = await startReceiver(2);
    const e = await start();
    const id = await accepted(e, 'contacts/add', { webHookUri: receiver.url, contacts: [{ userId: 'u1' }] });
    await e.idle();
    expect(receiver.received.map((r) => r.body.id)).toEqual([id]);
    expect(e.webhookLog()).toEqual([{ requestId: id, uri: receiver.url, status: 'done', attempts: 3, outcome: 'delivered', lastResult: 'HTTP 204' }]);
  });

  it('gives up after the configured attempts', async () => {
    receiver = await startReceiver(100);
    const e = await start({ webhooks: { maxAttempts: 2, baseDelayMs: 1 } });
    await accepted(e, 'contacts/add', { webHookUri: receiver.url, contacts: [{ userId: 'u1' }] });
    await e.idle();
    expect(receiver.attempts).toBe(2);
    expect(e.stats().webhooks).toMatchObject({ failed: 1, delivered: 0, attempts: 2 });
  });

  it('dropped webhooks are never sent, and say so in the log and stats', async () => {
    receiver = await startReceiver();
    const e = await start({ faults: { webhookDropRate: 1 } });
    await accepted(e, 'contacts/add', { webHookUri: receiver.url, contacts: [{ userId: 'u1' }] });
    await accepted(e, 'contacts/add', { webHookUri: receiver.url, contacts: [{ userId: 'u2' }] });
    await waitFor(() => e.stats().processing.processed === 2, { message: 'processed' });
    await e.idle();
    expect(receiver.attempts).toBe(0);
    expect(e.webhookLog().map((w) => w.outcome)).toEqual(['dropped', 'dropped']);
    expect(e.stats().webhooks.dropped).toBe(2);
    // Switched off through the control endpoint, the next one arrives.
    await control(e, 'POST', '/faults', { webhookDropRate: 0 });
    await accepted(e, 'contacts/add', { webHookUri: receiver.url, contacts: [{ userId: 'u3' }] });
    await waitFor(() => receiver!.received.length === 1, { message: 'webhook after the fault is off' });
  });
});

describe('retention', () => {
  it('statuses older than 7 days vanish from request/find; younger ones stay', async () => {
    const e = await start({ processing: { auto: false } });
    const old = await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1' }] });
    e.processNow();
    e.advanceClock(3 * 86_400_000);
    const young = await accepted(e, 'contacts/add', { contacts: [{ userId: 'u2' }] });
    e.processNow();

    const advanced = await control(e, 'POST', '/clock/advance', { days: 4, ms: 1_000 });
    expect(advanced.json.offsetMs).toBe(7 * 86_400_000 + 1_000);
    const answer = await post(e, 'request/find', { ids: [old, young] });
    expect(Object.keys(answer.json.requests ?? {})).toEqual([young]);

    e.advanceClock(3 * 86_400_000);
    const gone = await post(e, 'request/find', { ids: [old, young] });
    expect(gone.json).toEqual({ result: false, errors: ['No matches found'] });
    expect(gone.status).toBe(404);
  });
});

describe('processing order', () => {
  /** Eight updates of one contact, accepted in order, processed together; returns the processing order. */
  async function order(randomOrder: boolean, seed: number): Promise<{ accepted: string[]; processed: string[]; lastName: unknown }> {
    receiver ??= await startReceiver();
    const e = await startEmulator({ seed, processing: { auto: false, randomOrder } });
    try {
      const ids: string[] = [];
      await run(e, 'contacts/add', { contacts: [{ userId: 'u1' }] });
      for (let i = 1; i <= 8; i++) ids.push(await accepted(e, 'contacts/update', { webHookUri: receiver.url, contacts: [{ contact: 'u1', userId: 'u1', lastName: `v${i}` }] }));
      expect((await control<{ processed: number }>(e, 'POST', '/process')).json.processed).toBe(8);
      expect((await control(e, 'POST', '/idle', { timeoutMs: 5_000 })).json).toEqual({ idle: true });
      return { accepted: ids, processed: e.webhookLog().map((w) => w.requestId), lastName: e.contacts(LIST_ID)?.[0]?.lastName };
    } finally {
      await e.close();
    }
  }

  it('without randomOrder, requests are processed in the order accepted', async () => {
    const { accepted: a, processed, lastName } = await order(false, 7);
    expect(processed).toEqual(a);
    expect(lastName).toBe('v8');
  });

  it('with randomOrder, the order is shuffled — the same way for the same seed', async () => {
    const first = await order(true, 7);
    expect(first.processed).not.toEqual(first.accepted);
    expect([...first.processed].sort()).toEqual([...first.accepted].sort());
    const again = await order(true, 7);
    expect(again.processed.map((id) => again.accepted.indexOf(id))).toEqual(first.processed.map((id) => first.accepted.indexOf(id)));
  });
});

describe('concurrency limit', () => {
  it('the 11th concurrent request is answered 429 with a result:false body; peak and rejections are counted', async () => {
    const e = await start({ faults: { latencyMs: 400 } });
    const answers = await Promise.all(Array.from({ length: 11 }, () => post(e, 'request/find', { ids: ['x'] })));
    const rejected = answers.filter((a) => a.status === 429);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.json).toEqual({ result: false, errors: ['Too many concurrent requests: at most 10 are allowed'] });
    expect(e.stats()).toMatchObject({ peakConcurrency: 11, rejectedConcurrency: 1, inFlight: 0 });
    const stats = (await control(e, 'GET', '/stats')).json;
    expect(stats).toMatchObject({ peakConcurrency: 11, rejectedConcurrency: 1 });
  });

  it('a held request (timeout fault) counts until the client gives up, then is logged as a timeout', async () => {
    const e = await start({ faults: { next: [{ kind: 'timeout', count: 1 }] } });
    const controller = new AbortController();
    const pending = fetch(`${e.url}/request/find`, {
      method: 'POST',
      headers: { 'Access-Token': TOKEN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ids: ['x'] }),
      signal: controller.signal,
    }).catch((err: unknown) => err);
    await waitFor(() => e.stats().inFlight === 1, { message: 'held request in flight' });
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await waitFor(() => e.stats().inFlight === 0, { message: 'held request released' });
    expect(e.requestLog().map((r) => [r.endpoint, r.outcome, r.httpStatus])).toEqual([['request/find', 'timeout', null]]);
  });
});

describe('control endpoints', () => {
  it('expose contacts, the request log, stats and faults, and reset everything', async () => {
    const e = await start({ processing: { auto: false } });
    await accepted(e, 'contacts/add', { contacts: [{ userId: 'u1', contactGender: 'M', contactScore: '7.5', favouriteColour: 'red' }] });
    await post(e, 'contacts/add', { contactListId: LIST_ID, contacts: [] });
    await control(e, 'POST', '/process');

    const contacts = await control<Record<string, unknown>[]>(e, 'GET', `/lists/${LIST_ID}/contacts`);
    expect(contacts.json).toEqual([expect.objectContaining({ userId: 'u1', contactGender: 1, contactScore: 7.5 })]);
    // An undocumented key is dropped, and the request log says so.
    expect(contacts.json[0]).not.toHaveProperty('favouriteColour');
    expect(e.requestLog()[0]?.ignoredKeys).toEqual(['favouriteColour']);
    expect((await control(e, 'GET', '/lists/nope/contacts')).status).toBe(404);

    const log = await control<{ endpoint: string; outcome: string; httpStatus: number; contactCount: number; requestId: string }[]>(e, 'GET', '/requests');
    expect(log.json.map((r) => [r.endpoint, r.outcome, r.httpStatus, r.contactCount])).toEqual([
      ['contacts/add', 'accepted', 200, 1],
      ['contacts/add', 'validation', 400, 0],
    ]);
    const status = await control<RequestStatus>(e, 'GET', `/requests/${log.json[0]?.requestId}`);
    expect(status.json.status).toBe('done');

    const stats = await control<{ byEndpoint: Record<string, Record<string, number>> }>(e, 'GET', '/stats');
    expect(stats.json.byEndpoint['contacts/add']).toEqual({ accepted: 1, validation: 1 });

    const faults = await control(e, 'POST', '/faults', { serverErrorRate: 2 });
    expect(faults.status).toBe(400);
    expect((await control(e, 'POST', '/faults', { latencyMs: 5 })).json).toMatchObject({ latencyMs: 5 });
    expect((await control(e, 'GET', '/nowhere')).status).toBe(404);

    expect((await control(e, 'POST', '/reset')).json).toEqual({ ok: true });
    expect(e.contacts(LIST_ID)).toEqual([]);
    expect(e.requestLog()).toEqual([]);
    expect(e.faults().latencyMs).toBe(0);
  });

  it('seeded faults are deterministic: the same seed gives the same sequence of outcomes', async () => {
    const outcomes = async (seed: number) => {
      const e = await startEmulator({ seed, faults: { serverErrorRate: 0.5 } });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++) statuses.push((await post(e, 'request/find', { ids: ['x'] })).status);
        return statuses;
      } finally {
        await e.close();
      }
    };
    const a = await outcomes(99);
    expect(a).toContain(500);
    expect(a).toContain(404);
    expect(await outcomes(99)).toEqual(a);
  });
});
