import { describeChange, payloadDiff } from '../admin/diff.js';
import { IDENTIFIER_FIELDS } from '../mapping/contact-fields.js';
import type { ContactPayload } from '../mapping/mapper.js';
import type { Desired } from '../outbox/desired.js';
import { sameJson } from '../outbox/json.js';

/**
 * What a snapshot, a resync or a mapping change would do to one contact, decided without writing anything:
 * the pure half of the dry runs and `plan` (src/snapshot/preview.ts reads the rows and states). The rules
 * mirror the statements they preview, so a dry run says what the command would do:
 *
 * - snapshot (store/snapshot.ts applyChunk): a valid row is queued when the payload it implies differs from
 *   the stored desired one (or its contact has a ROW_INVALID dead letter); an invalid row is dead-lettered
 *   and queues nothing. What a queued contact then becomes is delivery's decision (delivery/plan.ts decide):
 *   against what Wooxy holds (synced), an add, an update, a removal, or nothing (Wooxy holds it already).
 * - resync (forceResend): every contact of the rows read that is or should be in the list is queued, even
 *   one Wooxy holds as it is (it is sent again: still counted unchanged, and queued).
 * - plan: the row's payload under this configuration against what Wooxy holds, nothing else: the preview of
 *   what the reconciliation of a changed mapping will send. A mapping moved to another list holds nothing
 *   there yet (switchList): every contact is an add.
 * - rows gone (a reconciling snapshot's sweep, plan): a contact Wooxy holds is removed.
 */

export const CHANGES = ['add', 'update', 'remove', 'unchanged', 'dead-letter'] as const;
export type Change = (typeof CHANGES)[number];
export type PreviewMode = 'snapshot' | 'resync' | 'plan';

/** What the connector has stored for a contact (src/store/inspect.ts readStates). */
export interface Stored {
  desired: ContactPayload | null;
  synced: ContactPayload | null;
  /** A ROW_INVALID dead letter is recorded for it. */
  invalid: boolean;
}

export interface Verdict {
  change: Change;
  /** Whether the command would queue an outbox entry for the contact (plan queues nothing: always false). */
  queued: boolean;
  /** For the examples: the identifiers of an add, the fields of an update, why a removal, the row's problem. */
  detail: string;
}

const identifiers = (p: ContactPayload) =>
  IDENTIFIER_FIELDS.filter((f) => typeof p[f] === 'string' && p[f] !== '')
    .map((f) => `${f} ${String(p[f])}`)
    .join(', ');

/** Against what Wooxy holds: what delivery would make of `wants` (null: not in the list). */
function against(wants: ContactPayload | null, holds: ContactPayload | null, whyOut: string): Omit<Verdict, 'queued'> {
  if (wants === null) return holds === null ? { change: 'unchanged', detail: `not in the list: ${whyOut}` } : { change: 'remove', detail: whyOut };
  if (holds === null) return { change: 'add', detail: identifiers(wants) };
  if (sameJson(wants, holds)) return { change: 'unchanged', detail: '' };
  return { change: 'update', detail: payloadDiff(holds, wants).map((d) => describeChange(d)).join('; ') };
}

/**
 * One row read from the table: `desired` is what the mapper makes of it (desiredOf: null when the filter
 * keeps it out), `whyOut` says why it is out of the list, `stored` what the connector holds of its contact
 * (undefined: nothing). `listChanged` (plan): the mapping now names another list than the one it synced to.
 */
export function classifyRow(mode: PreviewMode, desired: Desired, whyOut: string, stored: Stored | undefined, listChanged = false): Verdict {
  const holds = listChanged ? null : (stored?.synced ?? null);
  if (!desired.ok) {
    // Dead-lettered; the contact keeps its last valid payload, which a resync sends again all the same.
    const queued = mode === 'resync' && ((stored?.desired ?? null) !== null || holds !== null);
    return { change: 'dead-letter', queued, detail: desired.message };
  }
  const outcome = against(desired.desired, holds, whyOut);
  switch (mode) {
    case 'plan':
      return { ...outcome, queued: false };
    case 'resync':
      return { ...outcome, queued: desired.desired !== null || holds !== null };
    case 'snapshot': {
      const queued = !sameJson(stored?.desired ?? null, desired.desired) || (stored?.invalid === true && desired.desired !== null);
      // Not queued: the stored payload is this one already, so the snapshot changes nothing for this contact
      // (what is under way for it, a pending entry or a dead letter, stays as it is).
      return queued ? { ...outcome, queued } : { change: 'unchanged', queued, detail: '' };
    }
  }
}

/** A contact whose row is gone (a reconciling snapshot's sweep, plan): removed where Wooxy holds it. */
export function classifyGone(mode: PreviewMode, stored: Stored, listChanged = false): Verdict | null {
  const holds = listChanged ? null : stored.synced;
  const queued = mode !== 'plan' && (stored.desired !== null || stored.synced !== null);
  if (holds === null) return queued ? { change: 'unchanged', queued, detail: 'not in the list: no row' } : null;
  return { change: 'remove', queued, detail: 'no row' };
}

export interface Example {
  key: string;
  detail: string;
}

/** Counts of each change and the first few examples of each: a preview's memory is this, whatever the table's size. */
export class Tally {
  readonly counts: Record<Change, number> = { add: 0, update: 0, remove: 0, unchanged: 0, 'dead-letter': 0 };
  readonly examples: Record<Change, Example[]> = { add: [], update: [], remove: [], unchanged: [], 'dead-letter': [] };
  queued = 0;

  constructor(private readonly perChange = 3) {}

  add(key: string, v: Verdict): void {
    this.counts[v.change]++;
    if (v.queued) this.queued++;
    const list = this.examples[v.change];
    if (list.length < this.perChange) list.push({ key, detail: v.detail });
  }
}
