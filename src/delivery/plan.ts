import type { ContactPayload } from '../mapping/mapper.js';
import { IDENTIFIER_FIELDS, type IdentifierField } from '../mapping/contact-fields.js';
import { sameJson } from '../outbox/json.js';

/** A pending outbox entry with what delivery needs to decide its call. */
export interface PendingEntry {
  mapping: string;
  key: string;
  /** Desired payload; null: the contact must not be in the list. */
  payload: ContactPayload | null;
  /** What Wooxy holds as far as we know; null: nothing. */
  synced: ContactPayload | null;
  /** Identifiers Wooxy may hold after a call whose answer was never recorded. */
  maybeIds: Identifiers | null;
  /**
   * A remove of this contact may have reached Wooxy without its answer being recorded (or a call of ours was
   * applied beside the one we tracked): Wooxy may not hold what `synced` says.
   */
  maybeRemoved: boolean;
  hint: 'add' | 'update' | 'replace' | null;
  lsn: string;
  attempts: number;
}

export type Identifiers = Partial<Record<IdentifierField, string>>;

/** How the call finds a contact: one identifier, userId first (the one a user cannot change). */
export interface Address {
  kind: IdentifierField;
  value: string;
}

export type Decision =
  | { op: 'skip'; reason: string }
  | { op: 'add'; contact: ContactPayload }
  | { op: 'update'; contact: ContactPayload; address: Address }
  | { op: 'remove'; address: Address; keepPending: boolean };

export function identifiersOf(payload: ContactPayload | null | undefined): Identifiers {
  const ids: Identifiers = {};
  if (!payload) return ids;
  for (const f of IDENTIFIER_FIELDS) {
    const v = payload[f];
    if (typeof v === 'string' && v !== '') ids[f] = v;
  }
  return ids;
}

export function addressOf(ids: Identifiers): Address | null {
  for (const kind of IDENTIFIER_FIELDS) {
    const value = ids[kind];
    if (value) return { kind, value };
  }
  return null;
}

/**
 * Decides the call for one contact from its desired and synced states:
 * - desired absent: remove it by the identifier Wooxy knows it by, or nothing when Wooxy has nothing;
 * - not in Wooxy: add (an update when the last add said it exists);
 * - in Wooxy: update, addressed by the synced identifier, so an email change finds the contact by its old
 *   email; nothing when the payload is what Wooxy already has;
 * - an identifier dropped (email set to NULL), or a cycle to break: remove first, then add (Wooxy's update
 *   cannot clear an identifier), keeping the pending entry for the add;
 * - in Wooxy as far as we know, but a remove may have happened unrecorded: remove again (a no-op when it
 *   did) and add, never "unchanged": Wooxy's copy is in doubt.
 */
export function decide(entry: PendingEntry, upsert: boolean): Decision {
  const known = entry.synced ? identifiersOf(entry.synced) : entry.maybeIds;
  const knownAddress = known ? addressOf(known) : null;
  if (entry.payload === null) {
    if (!knownAddress) return { op: 'skip', reason: 'not in Wooxy' };
    return { op: 'remove', address: knownAddress, keepPending: false };
  }
  const desired = identifiersOf(entry.payload);
  if (entry.maybeRemoved && entry.synced && knownAddress && entry.hint !== 'add' && entry.hint !== 'update') {
    return { op: 'remove', address: knownAddress, keepPending: true };
  }
  if (entry.synced && entry.hint !== 'replace' && entry.hint !== 'add') {
    if (sameJson(entry.payload, entry.synced)) return { op: 'skip', reason: 'unchanged' };
    const dropped = IDENTIFIER_FIELDS.some((f) => known?.[f] && !desired[f]);
    if (dropped && knownAddress) return { op: 'remove', address: knownAddress, keepPending: true };
    return { op: 'update', contact: entry.payload, address: knownAddress ?? addressOf(desired)! };
  }
  if (entry.hint === 'replace' && knownAddress) return { op: 'remove', address: knownAddress, keepPending: true };
  if (entry.hint === 'update' || (upsert && entry.hint !== 'add')) {
    const address = addressOf(desired);
    if (address) return { op: 'update', contact: entry.payload, address };
  }
  return { op: 'add', contact: entry.payload };
}

/**
 * Identifiers moving between contacts: A wants an identifier that B holds in Wooxy and gives up in its own
 * pending change. Sending A first would be rejected (ERR_CONTACT_DUPLICATION_ATTEMPT), so A waits for B. When
 * B also waits for A (two users swapping emails), or A, B and C pass their emails round, every contact waits
 * for another and none would ever be sent: in each such cycle (a strongly connected part of the waits-for
 * graph, of any length) the lowest key is replaced (removed, then added), which frees what it held; the rest
 * follow once that removal resolves. A cycle this batch cannot see (a holder not claimed with it) is broken
 * by the fallback after Wooxy's rejection.
 */
export function orderMoves(entries: readonly PendingEntry[]): { deferred: Set<string>; replace: Set<string> } {
  const holder = new Map<string, PendingEntry>();
  for (const e of entries) for (const [f, v] of Object.entries(identifiersOf(e.synced))) holder.set(`${e.mapping}:${f}:${v}`, e);
  const waitsFor = new Map<string, Set<string>>();
  const id = (e: PendingEntry) => `${e.mapping}\u0000${e.key}`;
  for (const e of entries) {
    const wanted = identifiersOf(e.payload);
    for (const [f, v] of Object.entries(wanted)) {
      const h = holder.get(`${e.mapping}:${f}:${v}`);
      if (!h || h === e) continue;
      if (identifiersOf(h.payload)[f as IdentifierField] === v) continue; // a real conflict: let Wooxy say so
      const set = waitsFor.get(id(e)) ?? new Set<string>();
      set.add(id(h));
      waitsFor.set(id(e), set);
    }
  }
  const replace = new Set<string>();
  for (const part of stronglyConnected(waitsFor)) {
    if (part.length > 1) replace.add(part.reduce((lowest, k) => (k < lowest ? k : lowest)));
  }
  const deferred = new Set([...waitsFor.keys()].filter((k) => !replace.has(k)));
  return { deferred, replace };
}

/** Tarjan's strongly connected components of a directed graph given as adjacency sets. */
function stronglyConnected(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const parts: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const part: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        part.push(w);
      } while (w !== v);
      parts.push(part);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return parts;
}
