/**
 * Overlaps: one contact named by two accepted requests of the same list while both are still `new`. The
 * vendor promises no order between requests, so two such requests may be applied either way round; the
 * connector promises never to have a contact in two unprocessed requests at once, and these counts are how
 * its tests hold it to that.
 *
 * A contact is matched by any identifier a request names: the userId, email and phoneNumber of an add or
 * update contact, an update's `contact` finder (which may be any of the three, so it matches all three),
 * and a remove's emails, phoneNumbers and userIds. Emails match case-insensitively, as the lists do.
 */
import type { RequestRecord } from './requests.js';

export interface OverlapExample {
  /** The shared identifier, as the later request wrote it. */
  identifier: string;
  /** [the earlier request, still new; the request whose acceptance made the overlap]. */
  requestIds: [string, string];
}

export interface OverlapStats {
  /** Pairs of requests that shared a contact while both were new, counted when the later one was accepted. */
  count: number;
  /** The first few pairs (at most MAX_OVERLAP_EXAMPLES), one shared identifier each. */
  examples: OverlapExample[];
}

export const MAX_OVERLAP_EXAMPLES = 20;

type Kind = 'userId' | 'email' | 'phoneNumber';
const KINDS: readonly Kind[] = ['userId', 'email', 'phoneNumber'];
const REMOVE_FIELDS: readonly [string, Kind][] = [
  ['emails', 'email'],
  ['phoneNumbers', 'phoneNumber'],
  ['userIds', 'userId'],
];

function keyOf(kind: Kind, value: string): string {
  return `${kind}:${kind === 'email' ? value.toLowerCase() : value}`;
}

/** Every identifier a request names, keyed for matching (`kind:value`), each with its value as written. */
export function namedIdentifiers(record: Pick<RequestRecord, 'endpoint' | 'body'>): Map<string, string> {
  const named = new Map<string, string>();
  const add = (kind: Kind, value: unknown) => {
    if (typeof value === 'string' && value !== '' && !named.has(keyOf(kind, value))) named.set(keyOf(kind, value), value);
  };
  const { body } = record;
  if (record.endpoint === 'contacts/remove') {
    for (const [field, kind] of REMOVE_FIELDS) if (Array.isArray(body[field])) for (const v of body[field] as unknown[]) add(kind, v);
    return named;
  }
  for (const contact of Array.isArray(body.contacts) ? (body.contacts as Record<string, unknown>[]) : []) {
    for (const kind of KINDS) add(kind, contact[kind]);
    // update finds its contact by userId, then email, then phone number: the finder may be any of them.
    if (record.endpoint === 'contacts/update') for (const kind of KINDS) add(kind, contact.contact);
  }
  return named;
}

export class OverlapTracker {
  /** list + identifier key → the new requests naming it. */
  readonly #index = new Map<string, Set<string>>();
  /** request id → its keys in #index, to take it out again. */
  readonly #keys = new Map<string, string[]>();
  #count = 0;
  #examples: OverlapExample[] = [];

  /** A request was accepted: counts every still-new request of its list it shares a contact with, then indexes it. */
  accepted(record: Pick<RequestRecord, 'id' | 'listId' | 'endpoint' | 'body'>): void {
    const counted = new Set<string>();
    const keys: string[] = [];
    for (const [key, identifier] of namedIdentifiers(record)) {
      const k = `${record.listId}\u0000${key}`;
      keys.push(k);
      const ids = this.#index.get(k) ?? new Set<string>();
      for (const other of ids) {
        if (counted.has(other)) continue;
        counted.add(other);
        this.#count++;
        if (this.#examples.length < MAX_OVERLAP_EXAMPLES) this.#examples.push({ identifier, requestIds: [other, record.id] });
      }
      ids.add(record.id);
      this.#index.set(k, ids);
    }
    this.#keys.set(record.id, keys);
  }

  /** The request is no longer new (processed, or forgotten): it overlaps nothing from now on. */
  settled(id: string): void {
    for (const k of this.#keys.get(id) ?? []) {
      const ids = this.#index.get(k);
      ids?.delete(id);
      if (ids?.size === 0) this.#index.delete(k);
    }
    this.#keys.delete(id);
  }

  stats(): OverlapStats {
    return { count: this.#count, examples: this.#examples.map((e) => ({ identifier: e.identifier, requestIds: [e.requestIds[0], e.requestIds[1]] })) };
  }

  reset(): void {
    this.#index.clear();
    this.#keys.clear();
    this.#count = 0;
    this.#examples = [];
  }
}
