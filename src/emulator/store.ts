/**
 * The contacts of one list, as the emulator keeps them. userId, email and phoneNumber are each unique within
 * a list. Emails match case-insensitively (the vendor does not say; treating User@x and user@x as one contact
 * makes the emulator the stricter side, so a connector that passes here will not meet surprise duplicates);
 * userIds and phone numbers match exactly.
 */
import { CONTACT_FIELDS, GENDER_KEY_WITH_SPACE, genderCode, toNumeric, type ListSchema, type VariableType } from '../wooxy/rules.js';
import type { ResultContact } from '../wooxy/types.js';

export type IdentifierKind = 'userId' | 'email' | 'phoneNumber';
export const IDENTIFIER_KINDS: readonly IdentifierKind[] = ['userId', 'email', 'phoneNumber'];

/** A validated contact from a request, normalised: identifiers apart ('' = clear), gender as its code. */
export interface ContactInput {
  identifiers: Partial<Record<IdentifierKind, string>>;
  fields: Record<string, unknown>;
  variables: { name: string; value: string }[];
}

export interface StoredContact {
  id: string;
  userId: string | null;
  email: string | null;
  phoneNumber: string | null;
  fields: Record<string, unknown>;
  variables: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** Documented defaults of a new contact: booleans false, gender 0 ("not known"), score null. */
const NEW_CONTACT_DEFAULTS: Readonly<Record<string, unknown>> = {
  active: false,
  emailSubscribe: false,
  smsSubscribe: false,
  desktopWebPushSubscribe: false,
  mobileWebPushSubscribe: false,
  telegramSubscribe: false,
  viberSubscribe: false,
  contactGender: 0,
  contactScore: null,
};

/** Documented fields kept as they are; identifiers, gender and variables are handled apart, unknown keys dropped. */
const PLAIN_FIELDS: ReadonlySet<string> = new Set(
  CONTACT_FIELDS.filter((f) => !['email', 'phoneNumber', 'userId', 'variables', 'contactGender'].includes(f)),
);

/** Only called on contacts that passed validation. */
export function normalizeContact(raw: Record<string, unknown>): ContactInput {
  const identifiers: Partial<Record<IdentifierKind, string>> = {};
  for (const kind of IDENTIFIER_KINDS) {
    const v = raw[kind];
    if (typeof v === 'string') identifiers[kind] = v;
  }
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (PLAIN_FIELDS.has(key)) fields[key] = value;
  }
  // The documented key wins over the examples' "contactGender " when both are sent.
  const gender = raw.contactGender ?? raw[GENDER_KEY_WITH_SPACE];
  if (gender !== undefined) fields.contactGender = genderCode(gender);
  if (fields.contactScore !== undefined && fields.contactScore !== null) fields.contactScore = toNumeric(fields.contactScore);
  const cac = fields.cac as { value: unknown; currency: string } | null | undefined;
  if (cac) fields.cac = { value: toNumeric(cac.value), currency: cac.currency };
  const variables = Array.isArray(raw.variables) ? (raw.variables as { name: string; value: string }[]) : [];
  return { identifiers, fields, variables };
}

function key(kind: IdentifierKind, value: string): string {
  return kind === 'email' ? value.toLowerCase() : value;
}

export class ListStore {
  readonly #byId = new Map<string, StoredContact>();
  readonly #index: Record<IdentifierKind, Map<string, StoredContact>> = {
    userId: new Map(),
    email: new Map(),
    phoneNumber: new Map(),
  };

  constructor(public schema: ListSchema) {}

  get size(): number {
    return this.#byId.size;
  }

  all(): StoredContact[] {
    return [...this.#byId.values()];
  }

  owner(kind: IdentifierKind, value: string): StoredContact | undefined {
    return this.#index[kind].get(key(kind, value));
  }

  /** update's `contact` finder: a userId first, then an email, then a phone number. */
  find(identifier: string): StoredContact | undefined {
    for (const kind of IDENTIFIER_KINDS) {
      const found = this.owner(kind, identifier);
      if (found) return found;
    }
    return undefined;
  }

  /** The first contact other than `self` that owns one of the identifiers the input would set. */
  conflict(input: ContactInput, self?: StoredContact): StoredContact | undefined {
    for (const kind of IDENTIFIER_KINDS) {
      const v = input.identifiers[kind];
      if (!v) continue;
      const other = this.owner(kind, v);
      if (other && other !== self) return other;
    }
    return undefined;
  }

  /** Variables the input sets that the list does not (or no longer) define. */
  unknownVariables(input: ContactInput): string[] {
    return input.variables.filter((v) => !this.schema.variables.has(v.name)).map((v) => v.name);
  }

  create(id: string, input: ContactInput, now: string): StoredContact {
    const contact: StoredContact = {
      id,
      userId: null,
      email: null,
      phoneNumber: null,
      fields: { ...NEW_CONTACT_DEFAULTS },
      variables: {},
      createdAt: now,
      updatedAt: now,
    };
    this.#byId.set(id, contact);
    this.apply(contact, input, now);
    return contact;
  }

  /** Writes the fields the input carries; absent fields keep their values. Call conflict() first. */
  apply(contact: StoredContact, input: ContactInput, now: string): void {
    for (const kind of IDENTIFIER_KINDS) {
      const v = input.identifiers[kind];
      if (v === undefined) continue;
      const old = contact[kind];
      if (old !== null) this.#index[kind].delete(key(kind, old));
      contact[kind] = v === '' ? null : v;
      if (v !== '') this.#index[kind].set(key(kind, v), contact);
    }
    Object.assign(contact.fields, input.fields);
    for (const { name, value } of input.variables) contact.variables[name] = value;
    contact.updatedAt = now;
  }

  remove(contact: StoredContact): void {
    this.#byId.delete(contact.id);
    for (const kind of IDENTIFIER_KINDS) {
      const v = contact[kind];
      if (v !== null) this.#index[kind].delete(key(kind, v));
    }
  }
}

export function resultContact(c: { id?: string | null; email?: string | null; phoneNumber?: string | null; userId?: string | null }): ResultContact {
  return { id: c.id ?? null, email: c.email ?? null, phone: c.phoneNumber ?? null, userId: c.userId ?? null };
}

/** The inspection view of a contact: identifiers, fields and variables flat, as a test would compare them. */
export function contactView(c: StoredContact): Record<string, unknown> {
  return { id: c.id, userId: c.userId, email: c.email, phoneNumber: c.phoneNumber, ...c.fields, variables: { ...c.variables }, createdAt: c.createdAt, updatedAt: c.updatedAt };
}

export function listSchemaOf(list: { id: string; variables: { name: string; type: VariableType }[] }): ListSchema {
  return { id: list.id, variables: new Map(list.variables.map((v) => [v.name, v.type])) };
}
