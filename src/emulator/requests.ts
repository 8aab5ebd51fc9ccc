/**
 * Accepted add/update/remove requests and their statuses, as request/find and the webhooks report them.
 * Statuses older than the retention window vanish, on the emulator's clock.
 */
import type { ContactError, Endpoint, RequestSource, RequestStatus, RequestStatusCode, ResultContact } from '../wooxy/types.js';
import { formatTimestamp } from './clock.js';

export type AsyncEndpoint = Exclude<Endpoint, 'request/find'>;

export const SOURCES: Record<AsyncEndpoint, RequestSource> = {
  'contacts/add': 'API_CREATE',
  'contacts/update': 'API_UPDATE',
  'contacts/remove': 'API_REMOVE',
};

export interface RequestRecord {
  id: string;
  endpoint: AsyncEndpoint;
  listId: string;
  webHookUri: string | null;
  status: RequestStatusCode;
  createdAtMs: number;
  updatedAtMs: number;
  /** When processing may start (emulator clock). */
  dueAtMs: number;
  /** Acceptance order. */
  seq: number;
  /** The validated request body. */
  body: Record<string, unknown>;
  results: { errors: ContactError[]; success: ResultContact[] };
}

export function toStatus(r: RequestRecord): RequestStatus {
  return {
    id: r.id,
    source: SOURCES[r.endpoint],
    status: r.status,
    webHookUri: r.webHookUri,
    createdAt: formatTimestamp(r.createdAtMs),
    updatedAt: formatTimestamp(r.updatedAtMs),
    results: { errors: r.results.errors.map((e) => ({ ...e, contact: { ...e.contact } })), success: r.results.success.map((s) => ({ ...s })) },
  };
}

export class RequestBook {
  readonly #all = new Map<string, RequestRecord>();
  readonly #pending = new Set<RequestRecord>();
  #seq = 0;

  nextSeq(): number {
    return ++this.#seq;
  }

  add(record: RequestRecord): void {
    this.#all.set(record.id, record);
    if (record.status === 'new') this.#pending.add(record);
  }

  get(id: string): RequestRecord | undefined {
    return this.#all.get(id);
  }

  /** Requests still `new`, in acceptance order. */
  pending(): RequestRecord[] {
    return [...this.#pending].sort((a, b) => a.seq - b.seq);
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  get size(): number {
    return this.#all.size;
  }

  finish(record: RequestRecord, status: RequestStatusCode, results: RequestRecord['results'], nowMs: number): void {
    record.status = status;
    record.results = results;
    record.updatedAtMs = nowMs;
    this.#pending.delete(record);
  }

  /** Forgets every status created more than `retentionMs` before `nowMs`; `forgotten` hears of each. */
  purge(nowMs: number, retentionMs: number, forgotten: (r: RequestRecord) => void = () => {}): number {
    let n = 0;
    for (const [id, r] of this.#all) {
      if (nowMs - r.createdAtMs > retentionMs) {
        this.#all.delete(id);
        this.#pending.delete(r);
        forgotten(r);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.#all.clear();
    this.#pending.clear();
  }
}
