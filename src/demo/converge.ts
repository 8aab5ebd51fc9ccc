/**
 * Whether a Wooxy list (as the emulator holds it) equals a table projected through its mapping, field by
 * field. A row the mapping filters out must be absent; a row whose projection is invalid is left out of the
 * comparison (it is a dead letter; Wooxy keeps whatever valid state it had); every other row must be there
 * with each field the mapping sends. A field the projection leaves out (a NULL code, an unknown TOASTed value)
 * is not compared: the mapping leaves it as Wooxy has it. An identifier the projection lacks must be absent.
 */
import { IDENTIFIER_FIELDS } from '../mapping/contact-fields.js';
import type { ContactPayload, Mapper, Row } from '../mapping/mapper.js';

export interface Mismatch {
  key: string;
  field: string;
  expected: unknown;
  actual: unknown;
}

export interface Convergence {
  /** Rows projected into the list. */
  expected: number;
  /** Contacts in the list. */
  actual: number;
  /** Source keys of rows whose projection is invalid (dead letters), not compared. */
  invalid: string[];
  missing: string[];
  /** Contacts in the list that no row accounts for, by their identifiers. */
  unexpected: string[];
  mismatched: Mismatch[];
  converged: boolean;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function findContact(contacts: Record<string, unknown>[], payload: ContactPayload): Record<string, unknown> | undefined {
  for (const f of IDENTIFIER_FIELDS) {
    const v = payload[f];
    if (typeof v !== 'string' || v === '') continue;
    const found = contacts.find((c) => (f === 'email' && typeof c[f] === 'string' ? c[f].toLowerCase() === v.toLowerCase() : c[f] === v));
    if (found) return found;
  }
  return undefined;
}

function compareFields(key: string, expected: ContactPayload, actual: Record<string, unknown>, out: Mismatch[]): void {
  for (const f of IDENTIFIER_FIELDS) {
    const want = typeof expected[f] === 'string' && expected[f] !== '' ? expected[f] : null;
    if (!same(want, actual[f] ?? null)) out.push({ key, field: f, expected: want, actual: actual[f] ?? null });
  }
  for (const [field, want] of Object.entries(expected)) {
    if ((IDENTIFIER_FIELDS as readonly string[]).includes(field)) continue;
    if (field === 'variables') {
      const have = (actual.variables ?? {}) as Record<string, unknown>;
      for (const v of want as Array<{ name: string; value: string }>) {
        if (!same(v.value, have[v.name])) out.push({ key, field: `variables.${v.name}`, expected: v.value, actual: have[v.name] });
      }
      continue;
    }
    if (!same(want, actual[field])) out.push({ key, field, expected: want, actual: actual[field] });
  }
}

export function compareList(mapper: Mapper, rows: readonly Row[], contacts: Record<string, unknown>[]): Convergence {
  const result: Convergence = { expected: 0, actual: contacts.length, invalid: [], missing: [], unexpected: [], mismatched: [], converged: false };
  const accounted = new Set<Record<string, unknown>>();
  const invalidKeys = new Set<string>();
  for (const row of rows) {
    const key = mapper.keyOf(row);
    if (key === null || !mapper.matches(row)) continue;
    const projection = mapper.project(row);
    if (!projection.ok) {
      result.invalid.push(key);
      invalidKeys.add(key);
      continue;
    }
    result.expected++;
    const contact = findContact(contacts, projection.contact);
    if (!contact) {
      result.missing.push(key);
      continue;
    }
    accounted.add(contact);
    compareFields(key, projection.contact, contact, result.mismatched);
  }
  for (const c of contacts) {
    if (accounted.has(c)) continue;
    // An invalid row may legitimately keep the last valid state it had (its userId names it).
    if (typeof c.userId === 'string' && invalidKeys.has(c.userId)) continue;
    result.unexpected.push(IDENTIFIER_FIELDS.map((f) => c[f]).filter(Boolean).join(' / '));
  }
  result.converged = result.missing.length === 0 && result.unexpected.length === 0 && result.mismatched.length === 0;
  return result;
}
