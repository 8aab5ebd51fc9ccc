import type { Mapper } from '../mapping/mapper.js';
import type { AddContactsRequest, UpdateContactsRequest } from '../wooxy/types.js';
import { decide, orderMoves, type Address, type Decision, type PendingEntry } from './plan.js';

export type Op = 'add' | 'update' | 'remove';

export interface Planned {
  entry: PendingEntry;
  decision: Exclude<Decision, { op: 'skip' }>;
}

/** One call: contacts of one mapping, one operation, at most `batchSize` of them. */
export interface Batch {
  mapper: Mapper;
  op: Op;
  upsert: boolean;
  items: Planned[];
}

export interface BatchPlan {
  batches: Batch[];
  /** Nothing to send (Wooxy holds the payload already, or there is nothing to remove). */
  skipped: PendingEntry[];
  /** Waiting for another contact to let go of an identifier they want. */
  deferred: PendingEntry[];
}

export const entryKey = (e: { mapping: string; key: string }): string => `${e.mapping}\u0000${e.key}`;

/**
 * Decides each claimed entry's call, sets aside the ones with nothing to do and the ones that must wait, and
 * groups the rest by mapping, operation and upsert flag into batches of at most `batchSize`.
 */
export function planBatches(entries: readonly PendingEntry[], mappers: ReadonlyMap<string, Mapper>, batchSize: number): BatchPlan {
  const { deferred: waiting, replace } = orderMoves(entries);
  const plan: BatchPlan = { batches: [], skipped: [], deferred: [] };
  const open = new Map<string, Batch>();
  for (const entry of entries) {
    const k = entryKey(entry);
    const mapper = mappers.get(entry.mapping);
    if (!mapper) continue; // claims ask only for configured mappings
    if (waiting.has(k)) {
      plan.deferred.push(entry);
      continue;
    }
    const decision = decide(replace.has(k) ? { ...entry, hint: 'replace' } : entry, mapper.upsert);
    if (decision.op === 'skip') {
      plan.skipped.push(entry);
      continue;
    }
    const upsert = decision.op === 'update' && mapper.upsert;
    const group = `${entry.mapping}\u0000${decision.op}\u0000${upsert}`;
    let batch = open.get(group);
    if (!batch || batch.items.length >= batchSize) {
      batch = { mapper, op: decision.op, upsert, items: [] };
      open.set(group, batch);
      plan.batches.push(batch);
    }
    batch.items.push({ entry, decision });
  }
  return plan;
}

/** The body of a batch's call, as the client takes it. */
export type CallBody =
  | { op: 'add'; contacts: AddContactsRequest['contacts'] }
  | { op: 'update'; upsert: boolean; contacts: UpdateContactsRequest['contacts'] }
  | { op: 'remove'; emails?: string[]; phoneNumbers?: string[]; userIds?: string[] };

export function callBody(batch: Batch): CallBody {
  // The payloads passed the vendor's rules when the rows were mapped (src/mapping, src/wooxy/validate.ts).
  if (batch.op === 'add') return { op: 'add', contacts: batch.items.map((i) => (i.decision as { contact: object }).contact) };
  if (batch.op === 'update') {
    const contacts = batch.items.map((i) => {
      const d = i.decision as { contact: object; address: Address };
      return { ...d.contact, contact: d.address.value };
    });
    return { op: 'update', upsert: batch.upsert, contacts };
  }
  const lists = { emails: [] as string[], phoneNumbers: [] as string[], userIds: [] as string[] };
  for (const i of batch.items) {
    const a = (i.decision as { address: Address }).address;
    (a.kind === 'email' ? lists.emails : a.kind === 'phoneNumber' ? lists.phoneNumbers : lists.userIds).push(a.value);
  }
  return { op: 'remove', ...Object.fromEntries(Object.entries(lists).filter(([, v]) => v.length > 0)) };
}
