import { ErrorCodes } from '../errors.js';
import type { Identifiers } from '../delivery/plan.js';
import { IDENTIFIER_FIELDS, type IdentifierField } from '../mapping/contact-fields.js';
import type { Blocker } from '../store/dead-letters.js';
import type { Holder } from '../store/identifiers.js';
import type { ResultRow } from '../store/results.js';

/** Wooxy's answers that mean "an identifier of this contact belongs to another contact". */
export const TAKEN_CODES: ReadonlySet<string> = new Set(['ERR_CONTACT_EXISTS', 'ERR_CONTACT_DUPLICATION_ATTEMPT']);

/** Emails are one mailbox whatever their case, at Wooxy; userIds and phone numbers match exactly. */
export function sameIdentifier(field: IdentifierField, a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  return field === 'email' ? a.toLowerCase() === b.toLowerCase() : a === b;
}

export interface Blocking extends Blocker {
  /** The holder's row no longer wants the identifier: it lets go of it once its own change reaches Wooxy. */
  moving: boolean;
}

/**
 * Which other contact holds (in its synced state) an identifier `key` wants. One that still wants it is
 * preferred over one giving it up: the first is a conflict in the source table, the second only a move.
 */
export function blockerOf(key: string, wanted: Identifiers, holders: readonly Holder[]): Blocking | null {
  let moving: Blocking | null = null;
  for (const field of IDENTIFIER_FIELDS) {
    const value = wanted[field];
    if (!value) continue;
    for (const h of holders) {
      if (h.key === key || !sameIdentifier(field, h.synced[field], value)) continue;
      const still = sameIdentifier(field, h.desired[field], value);
      if (still) return { key: h.key, field, value, moving: false };
      moving ??= { key: h.key, field, value, moving: true };
    }
  }
  return moving;
}

/**
 * The final verdict of contacts Wooxy refused because an identifier belongs to another contact, given the
 * contacts of the mapping that hold those identifiers:
 *
 * - none of ours holds it: Wooxy knows it from elsewhere (an import, a contact added by hand), or the holder's
 *   own answer is not applied yet; the add ⇄ update fallbacks go on as they were.
 * - one of ours holds it and its row still wants it: two rows of the source table share the identifier
 *   (nothing there enforces uniqueness), and no retry can help until one of them changes. Dead-lettered at
 *   once as IDENTIFIER_TAKEN, naming the holder and the identifier and keeping Wooxy's message, with the
 *   holder recorded: when Wooxy confirms a change that frees the identifier, the contact is queued again.
 * - one of ours holds it and is giving it up (a move, as orderMoves handles when both are claimed together):
 *   the retry waits for it. Only when the attempts run out is it dead-lettered, blocked by that holder, so it
 *   still goes as soon as the holder lets go.
 */
export function settleTaken(rows: readonly ResultRow[], holders: readonly Holder[]): ResultRow[] {
  return rows.map((r) => {
    if (!r.want) return r;
    const b = blockerOf(r.k, r.want, holders.filter((h) => h.mapping === r.m));
    if (!b || (b.moving && r.kind === 'retry')) return r;
    const held = `${b.field} ${b.value} is held by ${r.m}/${b.key}${b.moving ? ', which is giving it up but has not yet at Wooxy' : ''}`;
    return {
      ...r,
      kind: 'dead',
      hint: null,
      delay: 0,
      code: ErrorCodes.IDENTIFIER_TAKEN,
      human: `${held} (Wooxy: ${r.code}: ${r.human})`,
      blocked: { key: b.key, field: b.field, value: b.value },
    };
  });
}
