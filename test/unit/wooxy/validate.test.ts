/**
 * The pure validators, as the mapping stage will use them: the pages' quirks accepted, the strict readings
 * documented in docs/emulator.md enforced, and the list-dependent checks skipped without a list.
 */
import { describe, expect, it } from 'vitest';
import {
  genderCode,
  isE164,
  isTimezone,
  unknownContactKeys,
  validateAddRequest,
  validateContact,
  validateFindRequest,
  validateRemoveRequest,
  validateUpdateRequest,
  type ListSchema,
} from '../../../src/wooxy/index.js';
import { bodyExample } from '../../helpers/pages.js';

const list: ListSchema = { id: 'L', variables: new Map([['newVariableName', 'string'], ['signupDate', 'date']]) };
const add = { mode: 'add' as const, position: 0 };
const update = { mode: 'update' as const, position: 0 };

describe('validateContact', () => {
  it('accepts the pages’ example contacts, with the list and source ids they assume', () => {
    const ctx = { list, knownSourceIds: new Set(['Source_ID_from_Wooxy']) };
    const [added] = bodyExample('contacts/add').contacts as unknown[];
    const [updated] = bodyExample('contacts/update').contacts as unknown[];
    expect(validateContact(added, { ...add, ...ctx })).toEqual([]);
    expect(validateContact(updated, { ...update, ...ctx })).toEqual([]);
  });

  it('skips variable existence/type and the sourceId lookup when no list or source ids are given', () => {
    const contact = { userId: 'u', sourceId: 'anything', variables: [{ name: 'notOnAnyList', value: 'x' }, { name: 'signupDate', value: 'soon' }] };
    expect(validateContact(contact, add)).toEqual([]);
    expect(validateContact(contact, { ...add, list, knownSourceIds: new Set() })).toEqual([
      'Variable notOnAnyList not found in list. Try to add it first',
      'Variable signupDate type is date, but value is not valid date. Value soon',
      'sourceId anything not found in your account at contact position 0',
    ]);
  });

  it('reports every problem of a contact, with its position', () => {
    expect(validateContact({ name: 1, active: 'no' }, { ...add, position: 7 })).toEqual([
      'Argument name must be a string',
      'Argument active can be true or false',
      'email, phoneNumber or userId must be filled at contact position 7',
    ]);
  });

  it('uses each page’s wording where add and update differ', () => {
    expect(validateContact({ userId: 'u', lastName: 3 }, add)).toEqual(['Argument lastName mustbe a string']);
    expect(validateContact({ contact: 'u', userId: 'u', lastName: 3 }, update)).toEqual(['Argument lastName must be a string']);
    expect(validateContact({ userId: 'u', customerSourceId: 3 }, add)).toEqual([
      'Argument customerSourceId must be an alphanumeric string with max length within 40 characters',
    ]);
    expect(validateContact({ contact: 'u', userId: 'u', customerSourceId: 3 }, update)).toEqual(['Argument customerSourceId must be a string']);
  });

  it('null is not a string; only contactScore, cac and variables (default null) accept it', () => {
    expect(validateContact({ userId: 'u', firstName: null }, add)).toEqual(['Argument firstName must be a string']);
    expect(validateContact({ userId: 'u', contactScore: null, cac: null, variables: null }, add)).toEqual([]);
  });

  it('an empty identifier is "not given": no format check, and it does not count as filled', () => {
    expect(validateContact({ email: '', phoneNumber: '', userId: 'u' }, add)).toEqual([]);
    expect(validateContact({ email: '' }, add)).toEqual(['email, phoneNumber or userId must be filled at contact position 0']);
  });

  it('the examples’ quirks: "contactGender " key, cac.value as a string, links without a scheme', () => {
    expect(validateContact({ userId: 'u', 'contactGender ': 'N/A' }, add)).toEqual([]);
    expect(validateContact({ userId: 'u', 'contactGender ': 'robot' }, add)).toEqual(['Unknown gender value']);
    expect(validateContact({ userId: 'u', cac: { value: '2.05', currency: 'USD' } }, add)).toEqual([]);
    expect(validateContact({ userId: 'u', cac: { value: '0', currency: 'usd' } }, add)).toEqual(['CAC value must be a positive float', 'CAC currency usd not allowed. USD, EUR are']);
    expect(validateContact({ userId: 'u', twitterLink: 'twitter.com/wooxy' }, add)).toEqual([]);
  });

  it('customerSourceId: letters, digits and underscore, up to 40', () => {
    expect(validateContact({ userId: 'u', customerSourceId: 'Customer_Source_ID_From_Your_Platform' }, add)).toEqual([]);
    expect(validateContact({ userId: 'u', customerSourceId: 'a'.repeat(40) }, add)).toEqual([]);
    expect(validateContact({ userId: 'u', customerSourceId: 'a b' }, add)).toHaveLength(1);
  });

  it('userId must be under 125 symbols, counted as code points', () => {
    expect(validateContact({ userId: '😀'.repeat(124) }, add)).toEqual([]);
    expect(validateContact({ userId: 'x'.repeat(125) }, add)).toEqual(['Argument userId must be less than 125 symbols']);
  });

  it('variable names: reserved contact fields, then latin lowerCamelCase without digits', () => {
    const names = (name: string) => validateContact({ userId: 'u', variables: [{ name, value: 'v' }] }, add);
    expect(names('firstName')).toEqual(['variable "firstName" is reserved and can not be added as custom variable']);
    expect(names('birthday')).toEqual(['variable "birthday" is reserved and can not be added as custom variable']);
    expect(names('NewVariable')).toEqual(['invalid name of variable NewVariable']);
    expect(names('new_variable')).toEqual(['invalid name of variable new_variable']);
    expect(names('newVariableName')).toEqual([]);
    expect(validateContact({ userId: 'u', variables: [{ name: 'plan' }] }, add)).toEqual([
      'Argument variables must be an array of arrays with "name" and "value" fields',
    ]);
  });

  it('lists undocumented keys (the examples’ "contactGender " is documented, by its quirk)', () => {
    expect(unknownContactKeys({ userId: 'u', 'contactGender ': 1, contact: 'u', plan: 'gold', Email: 'x' })).toEqual(['plan', 'Email']);
  });

  it('a non-object contact', () => {
    expect(validateContact('jane@example.com', add)).toEqual(['add at least one valid contact to contacts field']);
  });
});

describe('field rules', () => {
  it('E.164 shape: the vendor’s own "+15555555" passes; no plus, a leading zero or 16 digits do not', () => {
    expect(['+15555555', '+3725550001', '+155555555', `+1${'2'.repeat(14)}`].every(isE164)).toBe(true);
    expect(['15555555', '+05555555', '+1', `+1${'2'.repeat(15)}`, '+1 555 5555'].some(isE164)).toBe(false);
  });

  it('time zones are IANA names known to ICU', () => {
    expect(isTimezone('Europe/Tallinn')).toBe(true);
    expect(isTimezone('UTC')).toBe(true);
    expect(isTimezone('+02:00')).toBe(false);
    expect(isTimezone('Europe/Atlantis')).toBe(false);
  });

  it('gender values and strings map to ISO/IEC 5218', () => {
    expect([0, 1, 2, 9].map(genderCode)).toEqual([0, 1, 2, 9]);
    expect(['', 'unknown', 'Undefined', 'EMPTY', 'm', 'Male', 'f', 'FEMALE', 'n/a', 'Not Applicable', 'na'].map(genderCode)).toEqual([0, 0, 0, 0, 1, 1, 2, 2, 9, 9, 9]);
    expect([3, '1', 'x', null, true].map(genderCode)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('request envelopes', () => {
  it('add/update: envelope first, then each contact in order', () => {
    expect(validateAddRequest({ contactListId: '', webHookUri: 'nope', contacts: [{ userId: 'u' }, { name: 'x' }] })).toEqual([
      'Argument contactListId must be a non-empty string',
      'Argument webHookUri must be a valid URI',
      'email, phoneNumber or userId must be filled at contact position 1',
    ]);
    expect(validateUpdateRequest({ contactListId: 'L', upsert: 1, contacts: [{ userId: 'u' }] })).toEqual(['Argument upsert must be a true or false', 'Argument contact required']);
    expect(validateAddRequest('text')).toEqual(['Bad Request']);
  });

  it('the list lookup is made only when the context can look lists up', () => {
    const body = { contactListId: 'other', contacts: [{ userId: 'u', variables: [{ name: 'x', value: 'y' }] }] };
    expect(validateAddRequest(body)).toEqual([]);
    expect(validateAddRequest(body, { findList: (id) => (id === 'L' ? list : undefined) })).toEqual(['List with id other not found!']);
  });

  it('remove counts records across the three arrays', () => {
    expect(validateRemoveRequest({ contactListId: 'L', emails: Array(50).fill('a@example.com'), userIds: Array(50).fill('u') })).toEqual([]);
    expect(validateRemoveRequest({ contactListId: 'L', emails: Array(50).fill('a@example.com'), userIds: Array(51).fill('u') })).toEqual([
      'Maximum count of records per transaction is 100, current 101',
    ]);
    expect(validateRemoveRequest({ contactListId: 'L' })).toEqual(['add at least one contact to remove']);
  });

  it('find', () => {
    expect(validateFindRequest({ ids: ['a'] })).toEqual([]);
    expect(validateFindRequest({ ids: Array(100).fill('a') })).toEqual([]);
    expect(validateFindRequest({ ids: Array(101).fill('a') })).toEqual(['ids count must be less or equal 100']);
  });
});
