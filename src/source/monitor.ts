import { sql } from 'kysely';
import type { DbHandle } from '../db/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface SlotStats {
  lagBytes: number | null;
  confirmedLsn: string | null;
  outbox: Record<string, number>;
}

/** Reads the slot's lag and the outbox depth every few seconds into the metrics. */
export class SlotMonitor {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly handle: DbHandle,
    private readonly slot: string,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly intervalMs = 5_000,
  ) {}

  start(): void {
    const tick = () => {
      this.sample()
        .catch((e: unknown) => this.log.debug({ err: e }, 'slot monitor sample failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  async sample(): Promise<SlotStats> {
    const { db, schema } = this.handle;
    const slot = await sql<{ lag: string | null; confirmed: string | null }>`
      SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag, confirmed_flush_lsn::text AS confirmed
      FROM pg_replication_slots WHERE slot_name = ${this.slot}`.execute(db);
    const depth = await sql<{ state: string; n: number }>`
      SELECT state, count(*)::int AS n FROM ${sql.id(schema, 'outbox')} GROUP BY state`.execute(db);
    const lag = slot.rows[0]?.lag;
    const outbox: Record<string, number> = { pending: 0, inflight: 0 };
    for (const r of depth.rows) outbox[r.state] = r.n;
    if (lag != null) this.metrics.replicationLagBytes.set(Number(lag));
    for (const [state, n] of Object.entries(outbox)) this.metrics.outboxDepth.set({ state }, n);
    return { lagBytes: lag == null ? null : Number(lag), confirmedLsn: slot.rows[0]?.confirmed ?? null, outbox };
  }
}
