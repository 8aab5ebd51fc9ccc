/**
 * Every documented error message, provoked by the matching bad input over HTTP. The expected texts are written
 * out here rather than taken from the message catalog, so a typo in the catalog fails; the last test checks
 * that the messages provoked cover every entry of every page's "Method Errors" list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator, FaultsPatch } from '../../src/emulator/index.js';
import type { Endpoint } from '../../src/wooxy/types.js';
import { DISABLED_TOKEN, LIST_ID, TOKEN, post, startEmulator, type PostOptions } from '../helpers/emulator.js';
import { documentedErrors, templatePattern } from '../helpers/pages.js';

interface Case {
  endpoint: Endpoint;
  name: string;
  body?: unknown;
  options?: PostOptions;
  faults?: FaultsPatch;
  expect: string;
  status?: number;
}

const ok = { email: 'jane@example.com' };
const contactCases = (mode: 'add' | 'update'): [string, Record<string, unknown>, string][] => [
  ['name not a string', { name: 5 }, 'Argument name must be a string'],
  ['email not RFC 2822', { email: 'jane.example.com', userId: 'u1' }, 'invalid RFC2822 email jane.example.com at email field'],
  ['email null', { email: null, userId: 'u1' }, 'Argument email must be a string'],
  ['phoneNumber not a string', { phoneNumber: 15555555 }, 'Argument phoneNumber must be a string'],
  ['phoneNumber not E.164', { phoneNumber: '555-1234' }, '555-1234 is not a valid E.164 phone number'],
  ['userId not a string', { userId: 7 }, 'Argument userId must be a string'],
  ['userId of 125 symbols', { userId: 'u'.repeat(125) }, 'Argument userId must be less than 125 symbols'],
  ['active', { active: 'yes' }, 'Argument active can be true or false'],
  ['emailSubscribe', { emailSubscribe: 1 }, 'Argument emailSubscribe can be true or false'],
  ['smsSubscribe', { smsSubscribe: 'true' }, 'Argument smsSubscribe can be true or false'],
  ['desktopWebPushSubscribe', { desktopWebPushSubscribe: null }, 'Argument desktopWebPushSubscribe can be true or false'],
  ['mobileWebPushSubscribe', { mobileWebPushSubscribe: 0 }, 'Argument mobileWebPushSubscribe can be true or false'],
  ['variables not an array', { variables: 'plan=gold' }, 'Argument variables must be an array of arrays with "name" and "value" fields'],
  ['variable name a number', { variables: [{ name: 1, value: 'v' }] }, 'name of variable must be a string'],
  ['variable name empty', { variables: [{ name: '', value: 'v' }] }, 'name of variable can not be empty'],
  ['variable name reserved', { variables: [{ name: 'email', value: 'v' }] }, 'variable "email" is reserved and can not be added as custom variable'],
  ['variable name with digits', { variables: [{ name: 'plan2', value: 'v' }] }, 'invalid name of variable plan2'],
  ['variable not on the list', { variables: [{ name: 'favouriteColour', value: 'red' }] }, 'Variable favouriteColour not found in list. Try to add it first'],
  ['date variable not a date', { variables: [{ name: 'signupDate', value: '2024-02-30' }] }, 'Variable signupDate type is date, but value is not valid date. Value 2024-02-30'],
  [
    'no identifier',
    { email: '', firstName: 'Jane' },
    mode === 'add' ? 'email, phoneNumber or userId must be filled at contact position 0' : 'email, phoneNumber or externalId/userId must be filled at contact position 0',
  ],
  ['firstName not a string', { firstName: ['Jane'] }, 'Argument firstName must be a string'],
  ['firstName too long', { firstName: 'J'.repeat(256) }, 'Argument firstName must be a string with max length within 255 characters'],
  ['lastName not a string', { lastName: 1 }, mode === 'add' ? 'Argument lastName mustbe a string' : 'Argument lastName must be a string'],
  ['lastName too long', { lastName: 'D'.repeat(256) }, 'Argument lastName must be a string with max length within 255 characters'],
  ['birthday', { contactBirthday: '01.01.1990' }, 'Argument birthday must be a YYYY-MM-DD date'],
  ['language', { contactLanguage: 'english' }, 'Argument language must be a valid ISO language'],
  ['gender', { contactGender: 3 }, 'Unknown gender value'],
  ['timezone', { contactTimezone: 'Mars/Olympus_Mons' }, 'Argument timezone must be a valid timezone string'],
  ['score', { contactScore: 'high' }, 'Argument score must have a numeric value'],
  ['avatarLink', { avatarLink: 'not a url' }, 'Argument avatarLink must be a valid URL'],
  ['facebookLink', { facebookLink: 'facebook' }, 'Argument facebookLink must be a valid URL'],
  ['instagramLink', { instagramLink: 42 }, 'Argument instagramLink must be a valid URL'],
  ['linkedInLink', { linkedInLink: 'http://' }, 'Argument linkedInLink must be a valid URL'],
  ['twitterLink', { twitterLink: '' }, 'Argument twitterLink must be a valid URL'],
  ['tiktokLink', { tiktokLink: 'tiktok com' }, 'Argument tiktokLink must be a valid URL'],
  ['sourceId not a string', { sourceId: 5 }, 'Argument sourceId must be a string'],
  ['sourceId unknown', { sourceId: 'Unknown_Source' }, 'sourceId Unknown_Source not found in your account at contact position 0'],
  ['customerSourceId with a hyphen', { customerSourceId: 'crm-42' }, 'Argument customerSourceId must be an alphanumeric string with max length within 40 characters'],
  ['customerSourceId of 41 characters', { customerSourceId: 'c'.repeat(41) }, 'Argument customerSourceId must be an alphanumeric string with max length within 40 characters'],
  ['cac without currency', { cac: { value: 1.5 } }, 'Argument CAC must be an array with value and currency fields'],
  ['cac value negative', { cac: { value: '-2.05', currency: 'EUR' } }, 'CAC value must be a positive float'],
  ['cac currency', { cac: { value: 2, currency: 'GBP' } }, 'CAC currency GBP not allowed. USD, EUR are'],
  ...(mode === 'update'
    ? ([
        ['contact empty', { contact: '' }, 'Argument contact must be a non-empty string filled with valid email, phoneNumber or userId'],
        ['contact missing', { contact: undefined }, 'Argument contact required'],
        ['customerSourceId not a string', { customerSourceId: 42 }, 'Argument customerSourceId must be a string'],
      ] as [string, Record<string, unknown>, string][])
    : []),
];

function contactsEndpointCases(endpoint: 'contacts/add' | 'contacts/update'): Case[] {
  const mode = endpoint === 'contacts/add' ? 'add' : 'update';
  const base = mode === 'add' ? ok : { ...ok, contact: 'jane@example.com' };
  const envelope = (extra: Record<string, unknown>) => ({ contactListId: LIST_ID, contacts: [base], ...extra });
  return [
    { endpoint, name: 'contactListId empty', body: envelope({ contactListId: '' }), expect: 'Argument contactListId must be a non-empty string' },
    { endpoint, name: 'contactListId missing', body: { contacts: [base] }, expect: 'Argument contactListId required' },
    { endpoint, name: 'unknown list', body: envelope({ contactListId: 'no-such-list' }), expect: 'List with id no-such-list not found!' },
    { endpoint, name: 'webHookUri', body: envelope({ webHookUri: 'YOUR_WEBHOOK_URL' }), expect: 'Argument webHookUri must be a valid URI' },
    { endpoint, name: 'contacts empty', body: envelope({ contacts: [] }), expect: 'add at least one valid contact to contacts field' },
    { endpoint, name: 'contacts over 100', body: envelope({ contacts: Array(101).fill(base) }), expect: 'Maximum count of records per transaction is 100, current 101' },
    ...(mode === 'update' ? [{ endpoint, name: 'upsert', body: envelope({ upsert: 'yes' }), expect: 'Argument upsert must be a true or false' }] : []),
    ...contactCases(mode).map(([name, patch, message]) => ({ endpoint, name, body: envelope({ contacts: [{ ...base, ...patch }] }), expect: message })),
    { endpoint, name: 'saving error', body: envelope({}), faults: { next: [{ kind: 'savingError', count: 1 }] }, expect: 'Request saving error. Please, contact us or try again later', status: 500 },
  ];
}

/** The messages every endpoint documents about the token and the service itself. */
function serviceCases(endpoint: Endpoint, body: unknown): Case[] {
  return [
    { endpoint, name: 'no token', body, options: { token: undefined }, expect: 'Argument Access-Token required', status: 401 },
    { endpoint, name: 'wrong token', body, options: { token: 'not-a-token' }, expect: 'Invalid authorization token!', status: 401 },
    { endpoint, name: 'revoked token', body, faults: { revokedTokens: [TOKEN] }, expect: `no matches found for access token ${TOKEN}`, status: 401 },
    { endpoint, name: 'disabled user', body, options: { token: DISABLED_TOKEN }, expect: 'user 42 not enabled', status: 401 },
    { endpoint, name: 'no data for key', body, faults: { authError: 'noData' }, expect: 'no data found for key 1', status: 401 },
    {
      endpoint,
      name: 'token check failed',
      body,
      faults: { authError: 'checkFailed' },
      expect: `access token check failed for key/secret 1${endpoint === 'contacts/add' ? ' ' : ''}/${TOKEN}`,
      status: 401,
    },
    { endpoint, name: 'internal error', body, faults: { next: [{ kind: 'serverError', count: 1 }] }, expect: 'Internal server error', status: 500 },
    { endpoint, name: 'malformed JSON', body, options: { token: TOKEN, raw: '{"contactListId": ' }, expect: 'Bad Request', status: 400 },
    { endpoint, name: 'not an object', body, options: { token: TOKEN, raw: '[1,2]' }, expect: 'Bad Request', status: 400 },
    { endpoint, name: 'not JSON content', body, options: { token: TOKEN, contentType: 'text/plain' }, expect: 'Bad Request', status: 400 },
  ];
}

const removeBody = (extra: Record<string, unknown>) => ({ contactListId: LIST_ID, emails: ['jane@example.com'], ...extra });
const CASES: Case[] = [
  ...contactsEndpointCases('contacts/add'),
  ...contactsEndpointCases('contacts/update'),
  ...serviceCases('contacts/add', { contactListId: LIST_ID, contacts: [ok] }),
  ...serviceCases('contacts/update', { contactListId: LIST_ID, contacts: [{ ...ok, contact: 'x' }] }),
  ...serviceCases('contacts/remove', removeBody({})),
  ...serviceCases('request/find', { ids: ['x'] }),
  { endpoint: 'contacts/remove', name: 'over 100 records', body: removeBody({ emails: Array(60).fill('a@example.com'), userIds: Array(41).fill('u') }), expect: 'Maximum count of records per transaction is 100, current 101' },
  { endpoint: 'contacts/remove', name: 'contactListId', body: removeBody({ contactListId: 5 }), expect: 'Argument contactListId must be a non-empty string' },
  { endpoint: 'contacts/remove', name: 'contactListId missing', body: { emails: ['a@example.com'] }, expect: 'Argument contactListId required' },
  { endpoint: 'contacts/remove', name: 'webHookUri', body: removeBody({ webHookUri: 'ftp://example.com' }), expect: 'Argument webHookUri must be a valid URI' },
  { endpoint: 'contacts/remove', name: 'emails not a list', body: removeBody({ emails: 'a@example.com' }), expect: 'Argument emails must be a list of emails' },
  { endpoint: 'contacts/remove', name: 'emails with a non-email', body: removeBody({ emails: ['nobody'] }), expect: 'Argument emails must be a list of emails' },
  { endpoint: 'contacts/remove', name: 'an email not a string', body: removeBody({ emails: [1] }), expect: 'Each email must be a string' },
  { endpoint: 'contacts/remove', name: 'phoneNumbers not a list', body: removeBody({ phoneNumbers: '+15555555' }), expect: 'Argument phoneNumbers must be a list of phoneNumbers' },
  { endpoint: 'contacts/remove', name: 'phoneNumbers not E.164', body: removeBody({ phoneNumbers: ['5555555'] }), expect: 'Argument phoneNumbers must be a list of phoneNumbers' },
  { endpoint: 'contacts/remove', name: 'a phoneNumber not a string', body: removeBody({ phoneNumbers: [15555555] }), expect: 'Each phoneNumber must be a string' },
  { endpoint: 'contacts/remove', name: 'userIds not a list', body: removeBody({ userIds: { id: 'u' } }), expect: 'Argument userIds must be a list of userIds' },
  { endpoint: 'contacts/remove', name: 'a userId not a string', body: removeBody({ userIds: [null] }), expect: 'Each userId must be a string' },
  { endpoint: 'contacts/remove', name: 'unknown list', body: removeBody({ contactListId: 'gone' }), expect: 'List with id gone not found!' },
  { endpoint: 'contacts/remove', name: 'nothing to remove', body: { contactListId: LIST_ID, emails: [], userIds: null }, expect: 'add at least one contact to remove' },
  { endpoint: 'contacts/remove', name: 'saving error', body: removeBody({}), faults: { next: [{ kind: 'savingError', count: 1 }] }, expect: 'Request saving error. Please, contact us or try again later' },
  { endpoint: 'request/find', name: 'ids not an array', body: { ids: 'abc' }, expect: 'Argument ids must be an array of strings' },
  { endpoint: 'request/find', name: 'ids missing', body: {}, expect: 'Argument ids required' },
  { endpoint: 'request/find', name: 'ids empty', body: { ids: [] }, expect: 'Argument ids can not be empty' },
  { endpoint: 'request/find', name: 'ids over 100', body: { ids: Array.from({ length: 101 }, (_, i) => `id${i}`) }, expect: 'ids count must be less or equal 100' },
  { endpoint: 'request/find', name: 'an id empty', body: { ids: ['abc', ''] }, expect: 'each id must be a non-empty string' },
  { endpoint: 'request/find', name: 'an id not a string', body: { ids: [12] }, expect: 'each id must be a non-empty string' },
  { endpoint: 'request/find', name: 'no matches', body: { ids: ['5d915c22d132d5f45a4e38b8'] }, expect: 'No matches found', status: 404 },
];

describe('every documented error message', () => {
  let emulator: Emulator;
  const provoked = new Map<Endpoint, Set<string>>();

  beforeAll(async () => {
    emulator = await startEmulator({ processing: { auto: false } });
  });
  afterAll(() => emulator.close());

  it.each(CASES.map((c) => [`${c.endpoint}: ${c.name}`, c] as const))('%s', async (_, c) => {
    emulator.reset();
    if (c.faults) emulator.setFaults(c.faults);
    const answer = await post(emulator, c.endpoint, c.body, c.options ?? { token: TOKEN });
    expect(answer.json.result).toBe(false);
    expect(answer.json.errors).toContain(c.expect);
    if (c.status !== undefined) expect(answer.status).toBe(c.status);
    // Request-level failures of add/update/remove carry a requestId, as the pages show; find's do not.
    if (c.endpoint === 'request/find') expect(answer.json.requestId).toBeUndefined();
    else expect(answer.json.requestId).toMatch(/^[0-9a-f]{24}$/);
    const set = provoked.get(c.endpoint) ?? new Set<string>();
    for (const m of answer.json.errors ?? []) set.add(m);
    provoked.set(c.endpoint, set);
  });

  it.each(['contacts/add', 'contacts/update', 'contacts/remove', 'request/find'] as const)('%s: every message on its page was provoked', (endpoint) => {
    const documented = documentedErrors(endpoint);
    expect(documented.length).toBeGreaterThan(10);
    const seen = [...(provoked.get(endpoint) ?? [])];
    const missing = documented.filter((template) => !seen.some((m) => templatePattern(template).test(m)));
    expect(missing).toEqual([]);
  });

  it('a valid contact yields no message at all (the cases above are not passing by accident)', async () => {
    emulator.reset();
    const answer = await post(emulator, 'contacts/add', { contactListId: LIST_ID, contacts: [ok] });
    expect(answer.json).toMatchObject({ result: true, errors: [] });
  });
});
