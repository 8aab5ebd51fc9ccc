import { BackgroundLoop } from '../lib/loop.js';
import { pruneHistory } from '../store/history.js';
import { expireRequests, pruneResolved, requestsToCheck, takeOldUnwarned, touchChecked, unresolvedStats } from '../store/results.js';
import type { WooxyClient } from '../wooxy/client.js';
import { applyStatus, type ApplyOptions } from './apply.js';

export interface PollerOptions extends ApplyOptions {
  client: WooxyClient;
  /** Interval while few requests are outstanding; it shrinks as more are. */
  pollIntervalMs: number;
  /** Warn (once per request) when one is unresolved this long: statuses vanish after 7 days. */
  warnAfterMs: number;
  /** A request that request/find does not know is expired only once it is this old (never for a fresh one). */
  missingGraceMs?: number;
  /** Called when contacts went back to pending, so delivery looks at once. */
  onRequeued?: () => void;
  /** Resolved requests are deleted once resolved this long (reconcile.keepResolvedHours). */
  keepResolvedMs: number;
  /** Contacts' history rows are deleted once this old (history.keepDays); default: 30 days. */
  keepHistoryMs?: number;
  /** How often resolved requests are pruned; default once a minute, slower than polling. */
  pruneIntervalMs?: number;
}

/**
 * Resolves unresolved requests through request/find, ≤ 100 ids per call, through the same limiter as
 * delivery. Each cycle asks about the requests checked longest ago; the interval adapts to how many are
 * outstanding. A request Wooxy no longer knows (past its retention) is marked expired and its contacts are
 * sent again from their current state. Beside polling, on a slower loop, it prunes requests resolved longer
 * ago than the retention, so the table holds about that window and not the whole history.
 */
export class Poller {
  private readonly polling: BackgroundLoop;
  private readonly pruning: BackgroundLoop;

  constructor(private readonly opts: PollerOptions) {
    this.polling = new BackgroundLoop({
      name: 'request/find polling',
      log: opts.log,
      intervalMs: opts.pollIntervalMs,
      // A failure must not silence polling for a long configured interval.
      failureBackoff: { baseMs: Math.min(opts.pollIntervalMs, 1_000), maxMs: Math.min(opts.pollIntervalMs, 5_000), jitter: 'equal' },
      tick: async () => {
        const outstanding = await this.pollOnce();
        return outstanding > 100 ? Math.min(200, opts.pollIntervalMs) : outstanding > 0 ? Math.min(500, opts.pollIntervalMs) : opts.pollIntervalMs;
      },
    });
    this.pruning = new BackgroundLoop({
      name: 'pruning resolved requests and history',
      log: opts.log,
      intervalMs: opts.pruneIntervalMs ?? 60_000,
      tick: async () => void (await this.prune()),
    });
  }

  start(): void {
    this.polling.start();
    this.pruning.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.polling.stop(), this.pruning.stop()]);
  }

  /**
   * Deletes requests resolved longer ago than their retention, then history rows older than theirs, each in
   * bounded statements; returns how many requests went.
   */
  async prune(): Promise<number> {
    const deleted = await pruneResolved(this.opts.ctx, this.opts.fence, { keepResolvedMs: this.opts.keepResolvedMs });
    if (deleted > 0) this.opts.log.info({ deleted, keepResolvedHours: this.opts.keepResolvedMs / 3_600_000 }, 'pruned resolved requests');
    const keepMs = this.opts.keepHistoryMs ?? 30 * 86_400_000;
    const history = await pruneHistory(this.opts.ctx, this.opts.fence, { keepMs });
    if (history > 0) this.opts.log.info({ deleted: history, keepDays: keepMs / 86_400_000 }, 'pruned contact history');
    return deleted;
  }

  /** One cycle; returns how many requests were outstanding. */
  async pollOnce(): Promise<number> {
    const { ctx, client, log, metrics } = this.opts;
    const stats = await unresolvedStats(ctx);
    metrics.unresolvedRequests.set(stats.count);
    metrics.oldestUnresolvedSeconds.set(stats.oldestSeconds);
    if (stats.count === 0) return 0;
    for (const r of await takeOldUnwarned(ctx, this.opts.warnAfterMs)) {
      log.warn(
        { requestId: r.requestId, mapping: r.mapping, sentAt: r.sentAt },
        'request still unresolved close to the 7-day retention: its status will soon be unknowable; it will be re-sent if it expires',
      );
    }

    // Up to ten finds a cycle (one per limiter slot), oldest-checked first.
    const rows = await requestsToCheck(ctx, 1000);
    const chunks: Array<typeof rows> = [];
    for (let i = 0; i < rows.length; i += 100) chunks.push(rows.slice(i, i + 100));
    let requeued = false;
    await Promise.all(
      chunks.map(async (chunk) => {
        const started = process.hrtime.bigint();
        const found = await client.find(chunk.map((r) => r.requestId));
        metrics.apiLatency.observe({ endpoint: 'request/find' }, Number(process.hrtime.bigint() - started) / 1e9);
        metrics.requests.inc({ endpoint: 'request/find', outcome: 'accepted' });
        for (const status of Object.values(found.requests)) {
          const outcome = await applyStatus(this.opts, status, 'poll');
          if (outcome === 'applied') requeued = true;
        }
        const age = new Map(chunk.map((r) => [r.requestId, r.ageMs]));
        const expired = found.missing.filter((id) => (age.get(id) ?? 0) >= (this.opts.missingGraceMs ?? 5 * 60_000));
        if (expired.length > 0) {
          await this.expire(expired);
          requeued = true;
          log.warn({ requestIds: expired.slice(0, 10), count: expired.length }, 'Wooxy no longer knows these requests (past retention): their contacts are sent again');
        }
        await touchChecked(ctx, chunk.map((r) => r.requestId));
      }),
    );
    if (requeued) this.opts.onRequeued?.();
    return stats.count;
  }

  /** The outcome is unknowable now: mark expired and put the contacts back to pending from their current state. */
  async expire(ids: string[]): Promise<void> {
    await expireRequests(this.opts.ctx, this.opts.fence, ids);
    this.opts.metrics.expiredRequests.inc(ids.length);
  }
}
