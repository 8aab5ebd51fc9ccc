import { backoffDelay, type BackoffPolicy } from '../lib/backoff.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PauseChange } from '../store/pauses.js';
import type { WooxyError } from '../wooxy/errors.js';

/** A failing mapping's batches wait min(60 s, 1 s·2^n), jittered, between attempts. */
const FAILURE_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000, jitter: 'equal' };

interface State {
  /** Transient failures in a row (reset by an accepted call). */
  failures: number;
  /** Not claimed before this time (ms since the epoch). */
  pausedUntil: number;
  /** Why it is paused (code and message), shown in logs, status and the metric while it lasts. */
  cause: string | null;
}

export interface HealthOptions {
  log: Logger;
  metrics: Metrics;
  /** After a list or authorization error, and once failures reach `pauseAfterFailures`, how long a pause lasts. */
  pauseRetryMs: number;
  /** Transient failures in a row that pause a mapping. */
  pauseAfterFailures: number;
  /**
   * Told when a pause starts, changes cause or ends, so other processes (`status`) can see it. Called
   * synchronously and must not block delivery: the caller records it in the background.
   */
  onChange?: (change: PauseChange) => void;
}

/**
 * Delivery's view of each mapping's health: one mapping's trouble (its list unknown, a variable missing, a
 * stalled API) pauses that mapping only. Transient failures back off with growing, jittered delays; after
 * `pauseAfterFailures` of them in a row the mapping pauses with one clear error line, and tries again every
 * `pauseRetryMs`. The first accepted call after trouble logs that delivery resumed. Each cause is logged once,
 * not at every retry.
 */
export class MappingHealth {
  private readonly states = new Map<string, State>();

  constructor(private readonly opts: HealthOptions) {}

  private state(mapping: string): State {
    let s = this.states.get(mapping);
    if (!s) {
      s = { failures: 0, pausedUntil: 0, cause: null };
      this.states.set(mapping, s);
    }
    return s;
  }

  /** The mappings among `names` that may be claimed now. */
  active(names: readonly string[], now = Date.now()): string[] {
    return names.filter((m) => (this.states.get(m)?.pausedUntil ?? 0) <= now);
  }

  /** Paused mappings and their causes, for status and readiness. */
  paused(): Array<{ mapping: string; cause: string; until: Date }> {
    return [...this.states].filter(([, s]) => s.cause !== null).map(([mapping, s]) => ({ mapping, cause: s.cause!, until: new Date(s.pausedUntil) }));
  }

  accepted(mapping: string): void {
    const s = this.states.get(mapping);
    if (!s || (s.failures === 0 && s.cause === null)) return;
    this.opts.log.info({ mapping, failures: s.failures, cause: s.cause }, `delivery of mapping ${mapping} resumed: Wooxy accepted a call again`);
    this.states.delete(mapping);
    this.opts.metrics.deliveryPaused.set({ mapping }, 0);
    if (s.cause !== null) this.opts.onChange?.({ mapping, paused: false, cause: s.cause });
  }

  /** Wooxy refuses the token or the list: pause now; the contacts stay pending. */
  refused(mapping: string, e: WooxyError): number {
    this.pause(mapping, e.code, e.messages.join('; '), 'delivery paused');
    return this.opts.pauseRetryMs;
  }

  /** A transient failure; returns how long the batch's contacts wait before their next attempt. */
  failed(mapping: string, e: WooxyError | Error): number {
    const s = this.state(mapping);
    s.failures++;
    const code = (e as { code?: string }).code ?? 'UNKNOWN';
    const delay = backoffDelay(FAILURE_BACKOFF, s.failures - 1);
    if (s.failures >= this.opts.pauseAfterFailures) {
      this.pause(mapping, code, e.message, `delivery paused after ${s.failures} failed calls in a row`);
      return Math.max(delay, this.opts.pauseRetryMs);
    }
    this.opts.log.warn({ mapping, code, error: e.message, failures: s.failures, retryInMs: delay }, 'Wooxy call failed; its contacts wait and are sent again');
    return delay;
  }

  private pause(mapping: string, code: string, message: string, what: string): void {
    const s = this.state(mapping);
    const cause = `${code}: ${message}`;
    s.pausedUntil = Date.now() + this.opts.pauseRetryMs;
    const changed = s.cause !== cause;
    if (changed) {
      this.opts.log.error({ mapping, code, retryEveryMs: this.opts.pauseRetryMs }, `${what} for mapping ${mapping}: ${cause}; trying again every ${Math.round(this.opts.pauseRetryMs / 1000)} s`);
    }
    s.cause = cause;
    if (changed) this.opts.onChange?.({ mapping, paused: true, cause });
    this.opts.metrics.deliveryPaused.set({ mapping }, 1);
  }
}
