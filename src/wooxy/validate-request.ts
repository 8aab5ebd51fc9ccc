/**
 * Request-envelope validation for the four endpoints, with the vendor's messages. Pure, like validate.ts.
 * Envelope problems come first in the answer, then each contact's, in array order.
 */
import { Messages } from './messages.js';
import { hasKey, isE164, isEmail, isPlainObject, isWebhookUri, type ListSchema } from './rules.js';
import { WooxyLimits } from './types.js';
import { validateContact } from './validate.js';

export interface RequestContext {
  /** Looks a list up by id; when undefined, list existence and the list-dependent contact checks are skipped. */
  findList?: (contactListId: string) => ListSchema | undefined;
  knownSourceIds?: ReadonlySet<string>;
}

/** contactListId and webHookUri, common to add, update and remove. Returns the list when it was found. */
function validateTarget(body: Record<string, unknown>, ctx: RequestContext, errors: string[]): ListSchema | undefined {
  let list: ListSchema | undefined;
  if (!hasKey(body, 'contactListId')) {
    errors.push(Messages.required('contactListId'));
  } else if (typeof body.contactListId !== 'string' || body.contactListId === '') {
    errors.push(Messages.contactListId);
  } else if (ctx.findList) {
    list = ctx.findList(body.contactListId);
    if (!list) errors.push(Messages.listNotFound(body.contactListId));
  }
  if (hasKey(body, 'webHookUri') && !(typeof body.webHookUri === 'string' && isWebhookUri(body.webHookUri))) {
    errors.push(Messages.webHookUri);
  }
  return list;
}

function validateContacts(body: Record<string, unknown>, mode: 'add' | 'update', ctx: RequestContext): string[] {
  const errors: string[] = [];
  const list = validateTarget(body, ctx, errors);
  if (mode === 'update' && hasKey(body, 'upsert') && typeof body.upsert !== 'boolean') errors.push(Messages.upsert);

  if (!hasKey(body, 'contacts')) {
    errors.push(Messages.required('contacts'));
    return errors;
  }
  const contacts = body.contacts;
  if (!Array.isArray(contacts) || contacts.length === 0) {
    errors.push(Messages.contacts);
    return errors;
  }
  if (contacts.length > WooxyLimits.CONTACTS_PER_CALL) {
    errors.push(Messages.tooManyRecords(contacts.length));
    return errors;
  }
  // The list-dependent checks need a list; when the context can look lists up but this one is unknown,
  // "List with id … not found!" has already been said and variable checks would only add noise.
  const listChecks = ctx.findList ? list : undefined;
  contacts.forEach((contact, position) => {
    errors.push(...validateContact(contact, { mode, position, list: listChecks, knownSourceIds: ctx.knownSourceIds }));
  });
  return errors;
}

export function validateAddRequest(body: unknown, ctx: RequestContext = {}): string[] {
  return isPlainObject(body) ? validateContacts(body, 'add', ctx) : [Messages.badRequest];
}

export function validateUpdateRequest(body: unknown, ctx: RequestContext = {}): string[] {
  return isPlainObject(body) ? validateContacts(body, 'update', ctx) : [Messages.badRequest];
}

const REMOVE_ARRAYS = [
  { key: 'emails', list: Messages.emails, each: Messages.eachEmail, valid: isEmail },
  { key: 'phoneNumbers', list: Messages.phoneNumbers, each: Messages.eachPhoneNumber, valid: isE164 },
  { key: 'userIds', list: Messages.userIds, each: Messages.eachUserId, valid: (_: string) => true },
] as const;

/** Number of records a remove body carries (emails + phoneNumbers + userIds), counting only arrays. */
export function removeRecordCount(body: Record<string, unknown>): number {
  let n = 0;
  for (const { key } of REMOVE_ARRAYS) {
    const v = body[key];
    if (Array.isArray(v)) n += v.length;
  }
  return n;
}

/**
 * contacts/remove. An entry of the wrong format (an email that is not one, a phone number that is not E.164)
 * is "Argument emails must be a list of emails" (resp. phoneNumbers): the page requires E.164 there and has no
 * other message for it. An empty string passes here and fails later with ERR_EMPTY_IDENTIFIERS.
 */
export function validateRemoveRequest(body: unknown, ctx: RequestContext = {}): string[] {
  if (!isPlainObject(body)) return [Messages.badRequest];
  const errors: string[] = [];
  const n = removeRecordCount(body);
  if (n > WooxyLimits.RECORDS_PER_REMOVE) errors.push(Messages.tooManyRecords(n));
  validateTarget(body, ctx, errors);
  for (const spec of REMOVE_ARRAYS) {
    if (!hasKey(body, spec.key) || body[spec.key] === null) continue;
    const v = body[spec.key];
    if (!Array.isArray(v)) {
      errors.push(spec.list);
      continue;
    }
    if (v.some((item) => typeof item !== 'string')) errors.push(spec.each);
    else if (v.some((item) => typeof item === 'string' && item !== '' && !spec.valid(item))) errors.push(spec.list);
  }
  if (n === 0) errors.push(Messages.nothingToRemove);
  return errors;
}

export function validateFindRequest(body: unknown): string[] {
  if (!isPlainObject(body)) return [Messages.badRequest];
  if (!hasKey(body, 'ids')) return [Messages.required('ids')];
  const ids = body.ids;
  if (!Array.isArray(ids)) return [Messages.ids];
  if (ids.length === 0) return [Messages.idsEmpty];
  if (ids.length > WooxyLimits.IDS_PER_FIND) return [Messages.idsCount];
  if (ids.some((id) => typeof id !== 'string' || id === '')) return [Messages.eachId];
  return [];
}
