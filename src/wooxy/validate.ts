/**
 * Contact validation exactly as the vendor documents it, returning the vendor's own messages. Pure: shared by
 * the emulator (which answers with these messages) and the connector's mapping stage (which pre-checks each row
 * before sending, because one bad contact makes the service reject the whole batch).
 *
 * Decisions where the pages are silent are listed in docs/emulator.md; the short version:
 * - null is not a string: `"email": null` is "Argument email must be a string". Only fields whose documented
 *   default is null (contactScore, cac, variables) accept null.
 * - An empty string for email, phoneNumber or userId means "not given" (no format check) and does not count
 *   towards "must be filled".
 * - Every problem is reported, not only the first.
 */
import { Messages, type ValidationMode } from './messages.js';
import {
  BOOLEAN_FIELDS,
  CONTACT_FIELDS,
  GENDER_KEY_WITH_SPACE,
  LINK_FIELDS,
  RESERVED_VARIABLE_NAMES,
  genderCode,
  hasKey,
  isCustomerSourceId,
  isE164,
  isEmail,
  isIsoLanguage,
  isLink,
  isLowerCamelCase,
  isPlainObject,
  isTimezone,
  isYmdDate,
  symbolLength,
  toNumeric,
  type ListSchema,
} from './rules.js';

export interface ContactContext {
  mode: ValidationMode;
  /** The contact's index in the request's `contacts` array (0-based, as the array is sent). */
  position: number;
  /** The target list; when undefined, variable existence and type are not checked. */
  list?: ListSchema;
  /** The account's source ids; when undefined, `sourceId` is not looked up. */
  knownSourceIds?: ReadonlySet<string>;
}

/** A contact's identifiers that count as "filled": non-empty strings. */
export function filledIdentifiers(contact: Record<string, unknown>): { email?: string; phoneNumber?: string; userId?: string } {
  const out: { email?: string; phoneNumber?: string; userId?: string } = {};
  for (const key of ['email', 'phoneNumber', 'userId'] as const) {
    const v = contact[key];
    if (typeof v === 'string' && v !== '') out[key] = v;
  }
  return out;
}

const KNOWN_KEYS: ReadonlySet<string> = new Set<string>([...CONTACT_FIELDS, GENDER_KEY_WITH_SPACE, 'contact']);

/**
 * Keys the pages do not document. The vendor's handling of them is unknown (most likely ignored): the emulator
 * drops them and lists them in its request log, and a mapping can warn about them before they are sent.
 */
export function unknownContactKeys(contact: Record<string, unknown>): string[] {
  return Object.keys(contact).filter((k) => !KNOWN_KEYS.has(k));
}

export function validateContact(contact: unknown, ctx: ContactContext): string[] {
  if (!isPlainObject(contact)) return [Messages.contacts];
  const errors: string[] = [];
  const present = (key: string) => hasKey(contact, key);
  const { mode } = ctx;

  if (mode === 'update') {
    if (!present('contact')) errors.push(Messages.required('contact'));
    else if (typeof contact.contact !== 'string' || contact.contact === '') errors.push(Messages.contact);
  }

  if (present('name') && typeof contact.name !== 'string') errors.push(Messages.name);

  if (present('email')) {
    if (typeof contact.email !== 'string') errors.push(Messages.email);
    else if (contact.email !== '' && !isEmail(contact.email)) errors.push(Messages.invalidEmail(contact.email));
  }
  if (present('phoneNumber')) {
    if (typeof contact.phoneNumber !== 'string') errors.push(Messages.phoneNumber);
    else if (contact.phoneNumber !== '' && !isE164(contact.phoneNumber)) errors.push(Messages.invalidPhone(contact.phoneNumber));
  }
  if (present('userId')) {
    if (typeof contact.userId !== 'string') errors.push(Messages.userId);
    // Documented on the add page only; applied to update too (docs/emulator.md): the README states the limit generally.
    else if (symbolLength(contact.userId) >= 125) errors.push(Messages.userIdLength);
  }

  for (const field of BOOLEAN_FIELDS) {
    if (present(field) && typeof contact[field] !== 'boolean') errors.push(Messages.boolean(field));
  }

  if (present('variables')) errors.push(...validateVariables(contact.variables, ctx.list));

  const ids = filledIdentifiers(contact);
  if (ids.email === undefined && ids.phoneNumber === undefined && ids.userId === undefined) {
    errors.push(Messages.identifiers(mode, ctx.position));
  }

  if (present('firstName')) {
    if (typeof contact.firstName !== 'string') errors.push(Messages.firstName);
    else if (symbolLength(contact.firstName) > 255) errors.push(Messages.firstNameLength);
  }
  if (present('lastName')) {
    if (typeof contact.lastName !== 'string') errors.push(Messages.lastName(mode));
    else if (symbolLength(contact.lastName) > 255) errors.push(Messages.lastNameLength);
  }
  if (present('contactBirthday') && !(typeof contact.contactBirthday === 'string' && isYmdDate(contact.contactBirthday))) {
    errors.push(Messages.birthday);
  }
  if (present('contactLanguage') && !(typeof contact.contactLanguage === 'string' && isIsoLanguage(contact.contactLanguage))) {
    errors.push(Messages.language);
  }
  for (const key of ['contactGender', GENDER_KEY_WITH_SPACE]) {
    if (present(key) && genderCode(contact[key]) === undefined) errors.push(Messages.gender);
  }
  if (present('contactTimezone') && !(typeof contact.contactTimezone === 'string' && isTimezone(contact.contactTimezone))) {
    errors.push(Messages.timezone);
  }
  if (present('contactScore') && contact.contactScore !== null && toNumeric(contact.contactScore) === undefined) {
    errors.push(Messages.score);
  }

  for (const field of LINK_FIELDS) {
    if (!present(field)) continue;
    const v = contact[field];
    if (typeof v !== 'string' || !isLink(v)) errors.push(Messages.link(field));
  }

  if (present('sourceId')) {
    if (typeof contact.sourceId !== 'string') errors.push(Messages.sourceId);
    else if (ctx.knownSourceIds && !ctx.knownSourceIds.has(contact.sourceId)) {
      errors.push(Messages.sourceIdNotFound(contact.sourceId, ctx.position));
    }
  }
  if (present('customerSourceId')) {
    const v = contact.customerSourceId;
    if (typeof v !== 'string') errors.push(mode === 'update' ? Messages.customerSourceId : Messages.customerSourceIdFormat);
    else if (!isCustomerSourceId(v)) errors.push(Messages.customerSourceIdFormat);
  }

  if (present('cac') && contact.cac !== null) errors.push(...validateCac(contact.cac));
  return errors;
}

function validateCac(cac: unknown): string[] {
  if (!isPlainObject(cac) || !hasKey(cac, 'value') || !hasKey(cac, 'currency')) return [Messages.cac];
  const errors: string[] = [];
  const value = toNumeric(cac.value);
  if (value === undefined || value <= 0) errors.push(Messages.cacValue);
  if (cac.currency !== 'EUR' && cac.currency !== 'USD') errors.push(Messages.cacCurrency(display(cac.currency)));
  return errors;
}

function validateVariables(variables: unknown, list: ListSchema | undefined): string[] {
  if (variables === null) return [];
  if (!Array.isArray(variables)) return [Messages.variables];
  const errors: string[] = [];
  for (const variable of variables) {
    if (!isPlainObject(variable) || !hasKey(variable, 'name') || !hasKey(variable, 'value')) {
      errors.push(Messages.variables);
      continue;
    }
    const { name, value } = variable;
    if (typeof name !== 'string') {
      errors.push(Messages.variableNameString);
      continue;
    }
    if (name === '') {
      errors.push(Messages.variableNameEmpty);
      continue;
    }
    if (RESERVED_VARIABLE_NAMES.has(name)) {
      errors.push(Messages.variableReserved(name));
      continue;
    }
    if (!isLowerCamelCase(name)) {
      errors.push(Messages.variableNameInvalid(name));
      continue;
    }
    // The value "is required string"; the pages have no message of its own for a non-string value.
    if (typeof value !== 'string') {
      errors.push(Messages.variables);
      continue;
    }
    if (!list) continue;
    const type = list.variables.get(name);
    if (type === undefined) errors.push(Messages.variableNotFound(name));
    else if (type === 'date' && !isYmdDate(value)) errors.push(Messages.variableDate(name, value));
  }
  return errors;
}

/** How a non-string value is shown inside a message (the vendor's PHP would interpolate it). */
export function display(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  return JSON.stringify(v);
}
