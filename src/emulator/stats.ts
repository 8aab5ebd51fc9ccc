/**
 * What the emulator saw: a bounded request log and counters, for tests, the demo and the benchmarks.
 * `peakConcurrency` counts every API request that arrived while others were in flight, the rejected one
 * included: it is the number a client's limiter must keep at or below the limit.
 */
import { ENDPOINTS, type Endpoint } from '../wooxy/types.js';
import type { OverlapStats } from './overlaps.js';

export const OUTCOMES = [
  'accepted',
  'found',
  'noMatches',
  'validation',
  'badRequest',
  'unauthorized',
  'rateLimited',
  'serverError',
  'savingError',
  'timeout',
  'stalled',
  'badResponse',
  'undocumented',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface RequestLogEntry {
  seq: number;
  /** ISO time on the emulator clock, when the request arrived. */
  at: string;
  endpoint: Endpoint;
  httpStatus: number | null;
  outcome: Outcome;
  /** Contacts (add/update), records (remove) or ids (find) in the body; 0 when unreadable. */
  contactCount: number;
  /**
   * add/update/remove: the id this call was given — answered with a failure too (as the pages show), but stored
   * only when accepted. A `stalled` entry has one only if the call was accepted.
   */
  requestId: string | null;
  errors: string[];
  /** A stalled call: how long Wooxy held it before going on (the entry is written when it was done). */
  stalledMs?: number;
  /** `stalled` entries: what the client would have been answered had it still been there (`accepted`: applied, late). */
  verdict?: Outcome;
  /** Undocumented contact keys an accepted add/update carried (dropped, as the vendor presumably does). */
  ignoredKeys?: string[];
  durationMs: number;
}

export interface EmulatorStats {
  seed: number;
  inFlight: number;
  peakConcurrency: number;
  /** Requests answered 429 because the concurrency limit was reached (injected 429s not included). */
  rejectedConcurrency: number;
  requests: number;
  byEndpoint: Record<Endpoint, Partial<Record<Outcome, number>>>;
  /** Stalled calls Wooxy holds now (they count in inFlight), and how many of them their client gave up on. */
  stalls: { held: number; clientGone: number };
  /** Contacts named by two accepted requests of one list while both were still `new` (see overlaps.ts). */
  overlaps: OverlapStats;
  processing: { pending: number; processed: number; failedRequests: number; contactsSucceeded: number; contactsFailed: number };
  webhooks: { delivered: number; failed: number; dropped: number; attempts: number; inFlight: number };
}

function emptyByEndpoint(): Record<Endpoint, Partial<Record<Outcome, number>>> {
  return Object.fromEntries(ENDPOINTS.map((e) => [e, {}])) as Record<Endpoint, Partial<Record<Outcome, number>>>;
}

export class Recorder {
  inFlight = 0;
  peakConcurrency = 0;
  rejectedConcurrency = 0;
  requests = 0;
  byEndpoint = emptyByEndpoint();
  processing = { processed: 0, failedRequests: 0, contactsSucceeded: 0, contactsFailed: 0 };
  readonly log: RequestLogEntry[] = [];
  #seq = 0;

  constructor(private readonly logLimit: number) {}

  /** An API request arrived; returns whether it fits under `limit`. */
  enter(limit: number): boolean {
    this.requests++;
    const concurrent = this.inFlight + 1;
    this.peakConcurrency = Math.max(this.peakConcurrency, concurrent);
    if (concurrent > limit) {
      this.rejectedConcurrency++;
      return false;
    }
    this.inFlight++;
    return true;
  }

  leave(): void {
    this.inFlight--;
  }

  record(entry: Omit<RequestLogEntry, 'seq'>): void {
    const counts = this.byEndpoint[entry.endpoint];
    counts[entry.outcome] = (counts[entry.outcome] ?? 0) + 1;
    this.log.push({ seq: ++this.#seq, ...entry });
    if (this.log.length > this.logLimit) this.log.splice(0, this.log.length - this.logLimit);
  }

  reset(): void {
    this.peakConcurrency = this.inFlight;
    this.rejectedConcurrency = 0;
    this.requests = 0;
    this.byEndpoint = emptyByEndpoint();
    this.processing = { processed: 0, failedRequests: 0, contactsSucceeded: 0, contactsFailed: 0 };
    this.log.length = 0;
  }
}
