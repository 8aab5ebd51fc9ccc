/**
 * Webhook delivery: the final status of a request, POSTed to its webHookUri, retried with exponential backoff
 * on a non-2xx answer or a connection error, and dropped on purpose at the configured rate. The body is the
 * same object request/find returns for the request (the pages do not show the webhook's body).
 */
import type { RequestStatus } from '../wooxy/types.js';
import type { Random } from './clock.js';

export interface WebhookSettings {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  timeoutMs: number;
}

/** `cancelled`: the emulator was reset or closed while delivering. */
export type WebhookOutcome = 'delivered' | 'failed' | 'dropped' | 'pending' | 'cancelled';

export interface WebhookLogEntry {
  requestId: string;
  uri: string;
  status: RequestStatus['status'];
  attempts: number;
  outcome: WebhookOutcome;
  /** The last HTTP status or connection error. */
  lastResult: string | null;
}

export class WebhookSender {
  readonly log: WebhookLogEntry[] = [];
  readonly counts = { delivered: 0, failed: 0, dropped: 0, attempts: 0 };
  #inFlight = 0;
  #abort = new AbortController();
  #onSettled: () => void;

  constructor(
    private readonly settings: WebhookSettings & { logLimit: number },
    private readonly random: Random,
    private readonly dropRate: () => number,
    onSettled: () => void,
  ) {
    this.#onSettled = onSettled;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Fire and forget; the outcome lands in `log` and `counts`. */
  send(uri: string, status: RequestStatus): void {
    const entry: WebhookLogEntry = { requestId: status.id, uri, status: status.status, attempts: 0, outcome: 'pending', lastResult: null };
    this.log.push(entry);
    if (this.log.length > this.settings.logLimit) this.log.splice(0, this.log.length - this.settings.logLimit);
    if (this.random() < this.dropRate()) {
      entry.outcome = 'dropped';
      this.counts.dropped++;
      return;
    }
    this.#inFlight++;
    void this.#deliver(uri, status, entry, this.#abort.signal).finally(() => {
      this.#inFlight--;
      this.#onSettled();
    });
  }

  async #deliver(uri: string, status: RequestStatus, entry: WebhookLogEntry, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(status);
    for (let attempt = 1; attempt <= this.settings.maxAttempts; attempt++) {
      if (signal.aborted) break;
      entry.attempts = attempt;
      this.counts.attempts++;
      try {
        const res = await fetch(uri, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.settings.timeoutMs)]),
        });
        await res.arrayBuffer();
        entry.lastResult = `HTTP ${res.status}`;
        if (res.ok) {
          entry.outcome = 'delivered';
          this.counts.delivered++;
          return;
        }
      } catch (e) {
        const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
        entry.lastResult = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : String(e);
      }
      if (attempt < this.settings.maxAttempts) {
        const delay = Math.min(this.settings.maxDelayMs, this.settings.baseDelayMs * 2 ** (attempt - 1));
        await abortableDelay(delay, signal);
      }
    }
    if (signal.aborted) {
      entry.outcome = 'cancelled';
      return;
    }
    entry.outcome = 'failed';
    this.counts.failed++;
  }

  /** Stops every delivery in progress (on reset and close). */
  cancelAll(): void {
    this.#abort.abort();
    this.#abort = new AbortController();
  }

  clear(): void {
    this.cancelAll();
    this.log.length = 0;
    this.counts.delivered = this.counts.failed = this.counts.dropped = this.counts.attempts = 0;
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
