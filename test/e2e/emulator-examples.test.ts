/**
 * Each reference page's own body example, sent as printed, is accepted; and the answers have the shapes the
 * pages' response examples show. Two placeholders must be replaced to be meaningful: YOUR_WEBHOOK_URL is not a
 * URI at all (the emulator must POST the status somewhere, so it gets a real loopback receiver), and the find
 * page's YOUR_REQUEST_ID_n must be ids the service issued (the three other examples' requestIds).
 * YOUR_CONTACT_LIST_ID, newVariableName and Source_ID_from_Wooxy are configured in the emulator as they are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import type { Endpoint, RequestStatus } from '../../src/wooxy/types.js';
import { LIST_ID, post, startEmulator, startReceiver, type Receiver } from '../helpers/emulator.js';
import { bodyExample, responseExample } from '../helpers/pages.js';
import { waitFor } from '../helpers/wait.js';

/** The keys of an object, recursively (arrays by their first element), to compare shapes; leaves are not compared. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length > 0 ? [shape(v[0])] : [];
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape((v as Record<string, unknown>)[k])]));
  }
  return 'leaf';
}

describe('the reference pages’ body examples', () => {
  let emulator: Emulator;
  let receiver: Receiver;
  const requestIds: Partial<Record<Endpoint, string>> = {};

  beforeAll(async () => {
    emulator = await startEmulator();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await emulator.close();
    await receiver.close();
  });

  const withHook = (endpoint: Endpoint) => {
    const body = bodyExample(endpoint);
    expect(body.webHookUri).toBe('YOUR_WEBHOOK_URL');
    return { ...body, webHookUri: receiver.url };
  };

  it('the placeholder YOUR_WEBHOOK_URL itself is rejected, which is why it is replaced', async () => {
    const answer = await post(emulator, 'contacts/add', bodyExample('contacts/add'));
    expect(answer.json).toMatchObject({ result: false, errors: ['Argument webHookUri must be a valid URI'] });
  });

  it('contacts/add: accepted, processed, and stored with the quirky fields normalised', async () => {
    const answer = await post(emulator, 'contacts/add', withHook('contacts/add'));
    expect(answer.status).toBe(200);
    expect(answer.json.result).toBe(true);
    expect(shape(answer.json)).toEqual(shape(responseExample('contacts/add')));
    requestIds['contacts/add'] = answer.json.requestId;

    await emulator.idle();
    const [stored] = emulator.contacts(LIST_ID) ?? [];
    // "contactGender " (with the space) is read as contactGender; cac.value is kept as a number.
    expect(stored).toMatchObject({ email: 'user@example.com', phoneNumber: '+15555555', userId: 'myUserId', contactGender: 2, cac: { value: 2.05, currency: 'EUR' } });
    expect(stored?.variables).toEqual({ newVariableName: 'newVariableValue' });
    expect(emulator.request(answer.json.requestId!)?.status).toBe('done');
  });

  it('contacts/update: accepted; finds the added contact by its phone number and updates it', async () => {
    const body = withHook('contacts/update');
    const answer = await post(emulator, 'contacts/update', body);
    expect(answer.json.result).toBe(true);
    // The update page's example answer has " 5d91…" with a leading space: a typo, the shape is what counts.
    expect(shape(answer.json)).toEqual(shape(responseExample('contacts/update')));
    requestIds['contacts/update'] = answer.json.requestId;

    await emulator.idle();
    const status = emulator.request(answer.json.requestId!);
    expect(status?.status).toBe('done');
    expect(status?.results.success).toHaveLength(1);
    // cac.value was the string "2.05" and the links had no scheme: both accepted.
    expect(emulator.contacts(LIST_ID)?.[0]).toMatchObject({ cac: { value: 2.05, currency: 'USD' }, facebookLink: 'facebook.com/wooxy.com' });
  });

  it('contacts/remove: accepted; none of the example contacts exist, so each is ERR_CONTACT_NOT_EXISTS', async () => {
    const answer = await post(emulator, 'contacts/remove', withHook('contacts/remove'));
    expect(answer.json.result).toBe(true);
    expect(shape(answer.json)).toEqual(shape(responseExample('contacts/remove')));
    requestIds['contacts/remove'] = answer.json.requestId;

    await emulator.idle();
    const status = emulator.request(answer.json.requestId!);
    expect(status?.results.errors.map((e) => e.error)).toEqual(Array(7).fill('ERR_CONTACT_NOT_EXISTS'));
    expect(status?.status).toBe('fail');
  });

  it('request/find: with the three issued ids in place of YOUR_REQUEST_ID_n, answers every one', async () => {
    const example = bodyExample('request/find');
    expect(example.ids).toEqual(['YOUR_REQUEST_ID_1', 'YOUR_REQUEST_ID_2', 'YOUR_REQUEST_ID_3']);
    const ids = [requestIds['contacts/add'], requestIds['contacts/update'], requestIds['contacts/remove']];
    const answer = await post(emulator, 'request/find', { ...example, ids });
    expect(answer.json.result).toBe(true);
    expect(Object.keys(answer.json.requests ?? {}).sort()).toEqual([...ids].sort());

    // Same shape as the page's response, once the placeholder id is swapped for a real one.
    const pageAnswer = responseExample('request/find') as { requests: Record<string, RequestStatus> };
    const ours = answer.json.requests![ids[2]!] as RequestStatus;
    const added = answer.json.requests![ids[0]!] as RequestStatus;
    // The remove has only errors and the add only successes: together they show both halves of `results`.
    const both = { ...ours, results: { errors: ours.results.errors, success: added.results.success } };
    expect(shape({ ...answer.json, requests: { x: both } })).toEqual(shape({ ...pageAnswer, requests: { x: pageAnswer.requests.YOUR_REQUEST_ID } }));
    expect(ours).toMatchObject({ source: 'API_REMOVE', status: 'fail', webHookUri: receiver.url });
    expect(ours.createdAt).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  });

  it('each processed example posted its final status to the webhook, as request/find reports it', async () => {
    await waitFor(() => receiver.received.length === 3, { message: 'three webhooks' });
    for (const { body } of receiver.received) {
      const found = await post(emulator, 'request/find', { ids: [body.id] });
      expect(body).toEqual(found.json.requests![body.id]);
    }
  });
});
