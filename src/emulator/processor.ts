/**
 * What processing one accepted request does to a list, contact by contact, with the documented per-contact
 * error codes. The humanError texts are the emulator's own (the vendor documents none).
 *
 * A request ends `fail` when no contact succeeded (every contact failed, or an injected processing failure),
 * `done` otherwise; the pages do not say when the vendor uses `fail`, so a client must read the per-contact
 * results in both cases.
 */
import type { ContactError, ContactErrorCode, RequestStatusCode, ResultContact } from '../wooxy/types.js';
import { ListStore, normalizeContact, resultContact, type ContactInput, type IdentifierKind } from './store.js';
import type { RequestRecord } from './requests.js';

export interface ProcessEnv {
  /** `YYYY-MM-DD HH:mm:ss` of this processing. */
  now: string;
  newContactId: () => string;
  /** An injected processing failure: nothing is written, every contact ERR_SYSTEM_ERROR. */
  failRequest: boolean;
  /** Per contact: true injects ERR_SYSTEM_ERROR for that one contact. */
  failContact: () => boolean;
}

export interface ProcessOutcome {
  status: RequestStatusCode;
  results: RequestRecord['results'];
}

const SYSTEM_ERROR = 'Internal error while processing the contact; try again later';

function describe(kind: IdentifierKind, value: string): string {
  return `${kind} ${value}`;
}

function inputContact(input: ContactInput, id: string | null = null): ResultContact {
  const ids = input.identifiers;
  return resultContact({ id, email: ids.email || null, phoneNumber: ids.phoneNumber || null, userId: ids.userId || null });
}

class Outcome {
  readonly errors: ContactError[] = [];
  readonly success: ResultContact[] = [];
  fail(error: ContactErrorCode, contact: ResultContact, humanError: string): void {
    this.errors.push({ error, contact, humanError });
  }
  done(): ProcessOutcome {
    const status = this.success.length === 0 && this.errors.length > 0 ? 'fail' : 'done';
    return { status, results: { errors: this.errors, success: this.success } };
  }
}

export function processRequest(record: RequestRecord, store: ListStore, env: ProcessEnv): ProcessOutcome {
  const out = new Outcome();
  if (record.endpoint === 'contacts/remove') {
    processRemove(record.body, store, env, out);
    return out.done();
  }
  const contacts = (record.body.contacts as Record<string, unknown>[]).map((raw) => ({ raw, input: normalizeContact(raw) }));
  for (const { raw, input } of contacts) {
    if (env.failRequest || env.failContact()) {
      out.fail('ERR_SYSTEM_ERROR', inputContact(input), SYSTEM_ERROR);
      continue;
    }
    const unknown = store.unknownVariables(input);
    if (unknown.length > 0) {
      out.fail('ERR_INVALID_VARIABLE_NAME', inputContact(input), `Variable ${unknown.join(', ')} does not exist in list ${store.schema.id}`);
      continue;
    }
    if (record.endpoint === 'contacts/add') addOne(input, store, env, out);
    else updateOne(String(raw.contact), input, record.body.upsert === true, store, env, out);
  }
  return out.done();
}

function addOne(input: ContactInput, store: ListStore, env: ProcessEnv, out: Outcome): void {
  const existing = store.conflict(input);
  if (existing) {
    out.fail('ERR_CONTACT_EXISTS', inputContact(input, existing.id), `A contact with ${ownedIdentifier(input, existing)} already exists in list ${store.schema.id}`);
    return;
  }
  const created = store.create(env.newContactId(), input, env.now);
  out.success.push(resultContact(created));
}

function updateOne(finder: string, input: ContactInput, upsert: boolean, store: ListStore, env: ProcessEnv, out: Outcome): void {
  const target = store.find(finder);
  if (!target && !upsert) {
    out.fail('ERR_CONTACT_NOT_EXISTS', inputContact(input), `No contact found by "${finder}" in list ${store.schema.id}`);
    return;
  }
  const other = store.conflict(input, target);
  if (other) {
    out.fail(
      'ERR_CONTACT_DUPLICATION_ATTEMPT',
      inputContact(input, target?.id ?? null),
      `${ownedIdentifier(input, other)} belongs to another contact (${other.id}) in list ${store.schema.id}`,
    );
    return;
  }
  if (!target) {
    const created = store.create(env.newContactId(), input, env.now);
    out.success.push(resultContact(created));
    return;
  }
  const after = { ...target };
  for (const kind of ['userId', 'email', 'phoneNumber'] as const) {
    const v = input.identifiers[kind];
    if (v !== undefined) after[kind] = v === '' ? null : v;
  }
  if (after.userId === null && after.email === null && after.phoneNumber === null) {
    out.fail('ERR_EMPTY_IDENTIFIERS', inputContact(input, target.id), 'The update would leave the contact without userId, email and phone number');
    return;
  }
  store.apply(target, input, env.now);
  out.success.push(resultContact(target));
}

/** The identifier of `input` that `owner` holds, for a humanError. */
function ownedIdentifier(input: ContactInput, owner: { userId: string | null; email: string | null; phoneNumber: string | null }): string {
  for (const kind of ['userId', 'email', 'phoneNumber'] as const) {
    const v = input.identifiers[kind];
    if (v && owner[kind] !== null && (kind === 'email' ? owner[kind].toLowerCase() === v.toLowerCase() : owner[kind] === v)) return describe(kind, v);
  }
  return 'these identifiers';
}

const REMOVE_KINDS = [
  ['emails', 'email'],
  ['phoneNumbers', 'phoneNumber'],
  ['userIds', 'userId'],
] as const;

function processRemove(body: Record<string, unknown>, store: ListStore, env: ProcessEnv, out: Outcome): void {
  for (const [field, kind] of REMOVE_KINDS) {
    const values = Array.isArray(body[field]) ? (body[field] as string[]) : [];
    for (const value of values) {
      const given = resultContact({ [kind]: value || null });
      if (env.failRequest || env.failContact()) {
        out.fail('ERR_SYSTEM_ERROR', given, SYSTEM_ERROR);
        continue;
      }
      if (value === '') {
        out.fail('ERR_EMPTY_IDENTIFIERS', given, `An empty ${kind} identifies no contact`);
        continue;
      }
      const contact = store.owner(kind, value);
      if (!contact) {
        out.fail('ERR_CONTACT_NOT_EXISTS', given, `No contact with ${describe(kind, value)} in list ${store.schema.id}`);
        continue;
      }
      store.remove(contact);
      out.success.push(resultContact(contact));
    }
  }
}
