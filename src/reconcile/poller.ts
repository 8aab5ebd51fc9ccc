import { sql } from 'kysely';
import type { WooxyClient } from '../wooxy/client.js';
import { applyStatus, type ApplyOptions } from './apply.js';
import { pruneResolvedRequests } from './prune.js';

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
  /** How often resolved requests are pruned; default once a minute, slower than polling. */
  pruneIntervalMs?: number;
}

/**
 * Resolves unresolved requests through request/find, ≤ 100 ids per call, through the same limiter as
 * delivery. Each cycle asks about the requests checked longest ago; the interval adapts to how many are
 * outstanding. A request Wooxy no longer knows (past its retention) is marked expired and its contacts are
 * sent again from their current state. Beside polling, on a slower timer, it prunes requests resolved longer
 * ago than the retention, so the table holds about that window and not the whole history.
 */
export class Poller {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private cycle: Promise<void> | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private pruning: Promise<void> | null = null;
  private readonly t;

  constructor(private readonly opts: PollerOptions) {
    const s = opts.handle.schema;
    this.t = { requests: sql.id(s, 'requests'), outbox: sql.id(s, 'outbox') };
  }

  start(): void {
    this.running = true;
    this.schedule(0);
    this.schedulePrune(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    this.timer = null;
    this.pruneTimer = null;
    await Promise.all([this.cycle, this.pruning]);
  }

  private schedulePrune(ms: number): void {
    if (!this.running) return;
    this.pruneTimer = setTimeout(() => {
      this.pruning = this.prune()
        .then(() => undefined)
        .catch((e: unknown) => this.opts.log.warn({ err: e }, 'pruning resolved requests failed; retrying later'))
        .finally(() => this.schedulePrune(this.opts.pruneIntervalMs ?? 60_000));
    }, ms).unref();
  }

  /** Deletes requests resolved longer ago than the retention; returns how many. */
  async prune(): Promise<number> {
    const deleted = await pruneResolvedRequests({ handle: this.opts.handle, keepResolvedMs: this.opts.keepResolvedMs });
    if (deleted > 0) this.opts.log.info({ deleted, keepResolvedHours: this.opts.keepResolvedMs / 3_600_000 }, 'pruned resolved requests');
    return deleted;
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.cycle = this.pollOnce()
        .then((outstanding) => this.schedule(outstanding > 100 ? Math.min(200, this.opts.pollIntervalMs) : outstanding > 0 ? Math.min(500, this.opts.pollIntervalMs) : this.opts.pollIntervalMs))
        .catch((e: unknown) => {
          this.opts.log.warn({ err: e }, 'request/find poll failed; retrying');
          // A failure must not silence polling for a long configured interval.
          this.schedule(Math.min(this.opts.pollIntervalMs, 5_000));
        });
    }, ms).unref();
  }

  /** One cycle; returns how many requests were outstanding. */
  async pollOnce(): Promise<number> {
    const { handle, client, log, metrics } = this.opts;
    const db = handle.db;
    const stats = await sql<{ n: number; oldest: number | null }>`
      SELECT count(*)::int AS n, EXTRACT(EPOCH FROM now() - min(sent_at))::float8 AS oldest FROM ${this.t.requests} WHERE status = 'new'`.execute(db);
    const outstanding = stats.rows[0]?.n ?? 0;
    metrics.unresolvedRequests.set(outstanding);
    metrics.oldestUnresolvedSeconds.set(stats.rows[0]?.oldest ?? 0);
    if (outstanding === 0) return 0;
    await this.warnOld();

    // Up to ten finds a cycle (one per limiter slot), oldest-checked first.
    const { rows } = await sql<{ request_id: string; age_ms: number }>`
      SELECT request_id, (EXTRACT(EPOCH FROM now() - sent_at) * 1000)::float8 AS age_ms FROM ${this.t.requests}
      WHERE status = 'new' ORDER BY checked_at NULLS FIRST, sent_at LIMIT 1000`.execute(db);
    const chunks: Array<typeof rows> = [];
    for (let i = 0; i < rows.length; i += 100) chunks.push(rows.slice(i, i + 100));
    let requeued = false;
    await Promise.all(
      chunks.map(async (chunk) => {
        const started = process.hrtime.bigint();
        const found = await client.find(chunk.map((r) => r.request_id));
        metrics.apiLatency.observe({ endpoint: 'request/find' }, Number(process.hrtime.bigint() - started) / 1e9);
        metrics.requests.inc({ endpoint: 'request/find', outcome: 'accepted' });
        for (const status of Object.values(found.requests)) {
          const outcome = await applyStatus(this.opts, status, 'poll');
          if (outcome === 'applied') requeued = true;
        }
        const age = new Map(chunk.map((r) => [r.request_id, r.age_ms]));
        const expired = found.missing.filter((id) => (age.get(id) ?? 0) >= (this.opts.missingGraceMs ?? 5 * 60_000));
        if (expired.length > 0) {
          await this.expire(expired);
          requeued = true;
          log.warn({ requestIds: expired.slice(0, 10), count: expired.length }, 'Wooxy no longer knows these requests (past retention): their contacts are sent again');
        }
        await sql`UPDATE ${this.t.requests} SET checked_at = now() WHERE request_id = ANY(${chunk.map((r) => r.request_id)}::text[]) AND status = 'new'`.execute(db);
      }),
    );
    if (requeued) this.opts.onRequeued?.();
    return outstanding;
  }

  private async warnOld(): Promise<void> {
    const { rows } = await sql<{ request_id: string; mapping: string; sent_at: Date }>`
      UPDATE ${this.t.requests} SET warned = true
      WHERE status = 'new' AND NOT warned AND sent_at < now() - make_interval(secs => ${this.opts.warnAfterMs / 1000})
      RETURNING request_id, mapping, sent_at`.execute(this.opts.handle.db);
    for (const r of rows) {
      this.opts.log.warn(
        { requestId: r.request_id, mapping: r.mapping, sentAt: r.sent_at },
        'request still unresolved close to the 7-day retention: its status will soon be unknowable; it will be re-sent if it expires',
      );
    }
  }

  /** The outcome is unknowable now: mark expired and put the contacts back to pending from their current state. */
  async expire(ids: string[]): Promise<void> {
    await this.opts.handle.db.transaction().execute(async (trx) => {
      await sql`UPDATE ${this.t.requests} SET status = 'expired', resolved_at = now(), resolved_via = 'expired' WHERE request_id = ANY(${ids}::text[]) AND status = 'new'`.execute(trx);
      await sql`
        WITH gone AS (
          DELETE FROM ${this.t.outbox} WHERE state = 'inflight' AND request_id = ANY(${ids}::text[])
          RETURNING mapping, source_key, payload, lsn, attempts, maybe_ids, sent_op
        )
        INSERT INTO ${this.t.outbox} (mapping, source_key, state, payload, lsn, attempts, maybe_ids)
        SELECT mapping, source_key, 'pending', payload, lsn, attempts, maybe_ids FROM gone
        ON CONFLICT (mapping, source_key, state) DO UPDATE
          SET maybe_ids = COALESCE(${this.t.outbox}.maybe_ids, '{}'::jsonb) || COALESCE(EXCLUDED.maybe_ids, '{}'::jsonb), updated_at = now()`.execute(trx);
    });
    this.opts.metrics.expiredRequests.inc(ids.length);
  }
}
