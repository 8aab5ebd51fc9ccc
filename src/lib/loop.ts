import type { Logger } from '../observability/logger.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { Waiter } from './sleep.js';

export interface LoopOptions {
  /** What the loop does, for its log lines. */
  name: string;
  log: Logger;
  /** One round; returns the delay before the next (ms), or nothing for `intervalMs`. */
  tick: () => Promise<number | void>;
  intervalMs: number;
  /** After a failed round: the delay grows with the failures in a row (default min(30 s, 1 s·2^n)). */
  failureBackoff?: BackoffPolicy;
  /** Log level of a failed round (default warn); the line carries the error's message, not a stack. */
  failureLevel?: 'debug' | 'warn' | 'error';
}

/**
 * A background loop: a round, a pause, a round … until stopped. A failed round is logged and retried with
 * growing backoff; the loop never dies and never crashes the process. `wake()` runs the next round now,
 * `stop()` waits for the round in progress. Heartbeats, polling, pruning and sampling use it.
 */
export class BackgroundLoop {
  readonly #waiter = new Waiter();
  #running = false;
  #done: Promise<void> | null = null;
  #failures = 0;

  constructor(private readonly opts: LoopOptions) {}

  get running(): boolean {
    return this.#running;
  }

  start(initialDelayMs = 0): void {
    if (this.#running) return;
    this.#running = true;
    this.#done = this.#run(initialDelayMs);
  }

  wake(): void {
    this.#waiter.wake();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#waiter.wake();
    await this.#done;
    this.#done = null;
  }

  async #run(initialDelayMs: number): Promise<void> {
    if (initialDelayMs > 0) await this.#waiter.wait(initialDelayMs);
    while (this.#running) {
      let delay = this.opts.intervalMs;
      try {
        const next = await this.opts.tick();
        if (typeof next === 'number') delay = next;
        if (this.#failures > 0) this.opts.log.info({ loop: this.opts.name, failures: this.#failures }, `${this.opts.name} works again`);
        this.#failures = 0;
      } catch (e) {
        delay = backoffDelay(this.opts.failureBackoff ?? { baseMs: 1_000, maxMs: 30_000, jitter: 'equal' }, this.#failures++);
        const level = this.opts.failureLevel ?? 'warn';
        this.opts.log[level]({ loop: this.opts.name, error: errorText(e), code: errorCode(e), failures: this.#failures, retryInMs: delay }, `${this.opts.name} failed; retrying`);
      }
      if (!this.#running) break;
      await this.#waiter.wait(delay);
    }
  }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
