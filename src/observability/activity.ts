import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/** A counter's total over all its label sets. */
async function total(metric: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await metric.get()).values.reduce((n, v) => n + v.value, 0);
}

/**
 * One line a minute at info while anything happens — changes captured, contacts sent, requests resolved,
 * what is pending and in flight, dead letters — so an on-call reading the log at info sees the connector work
 * (a 20,000-contact backlog used to make no info line at all). Silent while idle.
 */
export class ActivitySummary {
  private last: { captured: number; sent: number; resolved: number; dead: number } | null = null;

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Logs the summary of what happened since the previous call (the first call only takes the counts). */
  async tick(): Promise<void> {
    const m = this.metrics;
    const now = { captured: await total(m.changes), sent: await total(m.contactsSent), resolved: await total(m.requestStatuses), dead: await total(m.deadLetters) };
    const depth = (await m.outboxDepth.get()).values;
    const pending = depth.find((v) => v.labels.state === 'pending')?.value ?? 0;
    const inflight = depth.find((v) => v.labels.state === 'inflight')?.value ?? 0;
    const before = this.last;
    this.last = now;
    if (!before) return;
    const delta = { captured: now.captured - before.captured, sent: now.sent - before.sent, resolved: now.resolved - before.resolved, deadLettered: now.dead - before.dead };
    if (delta.captured === 0 && delta.sent === 0 && delta.resolved === 0 && delta.deadLettered === 0 && pending === 0 && inflight === 0) return;
    const n = (x: number) => x.toLocaleString('en-US');
    this.log.info(
      { ...delta, pending, inflight },
      `last minute: ${n(delta.captured)} changes captured, ${n(delta.sent)} contacts sent, ${n(delta.resolved)} requests resolved, ${n(delta.deadLettered)} dead-lettered; ${n(pending)} pending, ${n(inflight)} in flight`,
    );
  }
}

/**
 * Each dead letter at warn with its key, code and message — at most `perMinute` lines a minute, so a bad
 * deployment dead-lettering thousands of rows does not drown the log; the rest are counted and summed up in
 * one line (`wooxy-cdc dead-letters list` has them all).
 */
export class DeadLetterLog {
  private windowStart = 0;
  private shown = 0;
  private suppressed = 0;
  private readonly codes = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    private readonly perMinute = 20,
    private readonly now: () => number = Date.now,
  ) {}

  report(d: { mapping: string; key: string; code: string; message: string; requestId?: string }): void {
    const t = this.now();
    if (t - this.windowStart >= 60_000) {
      this.flush();
      this.windowStart = t;
    }
    if (this.shown < this.perMinute) {
      this.shown++;
      this.log.warn({ mapping: d.mapping, key: d.key, code: d.code, humanError: d.message, ...(d.requestId ? { requestId: d.requestId } : {}) }, 'contact dead-lettered');
      return;
    }
    this.suppressed++;
    this.codes.set(d.code, (this.codes.get(d.code) ?? 0) + 1);
  }

  /** Says how many dead letters were not shown in the window that ends. */
  flush(): void {
    if (this.suppressed > 0) {
      this.log.warn(
        { suppressed: this.suppressed, codes: Object.fromEntries(this.codes) },
        `${this.suppressed} more contact(s) dead-lettered in the last minute, not shown one by one; wooxy-cdc dead-letters list shows them all`,
      );
    }
    this.shown = 0;
    this.suppressed = 0;
    this.codes.clear();
  }
}
