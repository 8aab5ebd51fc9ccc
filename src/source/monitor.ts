import { sql } from 'kysely';
import type { DbHandle } from '../db/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface SlotStats {
  /** WAL between the server's current position and the slot's confirmed position (what is not yet durable here). */
  lagBytes: number | null;
  /** WAL the server keeps for the slot: current position − restart_lsn. */
  retainedBytes: number | null;
  confirmedLsn: string | null;
  walStatus: string | null;
  outbox: Record<string, number>;
}

export interface SlotMonitorOptions {
  handle: DbHandle;
  slot: string;
  metrics: Metrics;
  log: Logger;
  intervalMs?: number;
  /** Retained WAL above this is warned about (0: never). */
  walWarnBytes?: number;
  /** How often the warning is repeated while the retained WAL stays above the threshold. */
  warnEveryMs?: number;
}

/**
 * Samples the slot and the connector's tables every few seconds into the metrics: replication lag, retained
 * WAL (with a warning past postgres.walWarnBytes: a slot that stops advancing fills the server's disk), outbox
 * depth by state, and the dead letters by code.
 */
export class SlotMonitor {
  private timer: NodeJS.Timeout | null = null;
  private warnedAt = 0;
  private readonly intervalMs: number;

  constructor(private readonly opts: SlotMonitorOptions) {
    this.intervalMs = opts.intervalMs ?? 5_000;
  }

  start(): void {
    const tick = () => {
      this.sample()
        .catch((e: unknown) => this.opts.log.debug({ err: e }, 'slot monitor sample failed'))
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
    const { handle, metrics } = this.opts;
    const { db, schema } = handle;
    const slot = await sql<{ lag: string | null; retained: string | null; confirmed: string | null; wal_status: string | null }>`
      SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag,
             pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained,
             confirmed_flush_lsn::text AS confirmed, wal_status
      FROM pg_replication_slots WHERE slot_name = ${this.opts.slot}`.execute(db);
    const depth = await sql<{ state: string; n: number }>`
      SELECT state, count(*)::int AS n FROM ${sql.id(schema, 'outbox')} GROUP BY state`.execute(db);
    const dead = await sql<{ mapping: string; code: string; n: number }>`
      SELECT mapping, error_code AS code, count(*)::int AS n FROM ${sql.id(schema, 'dead_letters')} GROUP BY 1, 2`.execute(db);

    const s = slot.rows[0];
    const lag = s?.lag == null ? null : Number(s.lag);
    const retained = s?.retained == null ? null : Number(s.retained);
    const outbox: Record<string, number> = { pending: 0, inflight: 0 };
    for (const r of depth.rows) outbox[r.state] = r.n;
    if (lag !== null) metrics.replicationLagBytes.set(lag);
    if (retained !== null) metrics.retainedWalBytes.set(retained);
    for (const [state, n] of Object.entries(outbox)) metrics.outboxDepth.set({ state }, n);
    metrics.deadLetterContacts.reset();
    for (const r of dead.rows) metrics.deadLetterContacts.set({ mapping: r.mapping, code: r.code }, r.n);
    this.checkRetention(retained, s?.wal_status ?? null);
    return { lagBytes: lag, retainedBytes: retained, confirmedLsn: s?.confirmed ?? null, walStatus: s?.wal_status ?? null, outbox };
  }

  private checkRetention(retained: number | null, walStatus: string | null): void {
    const { walWarnBytes = 0, log, metrics, slot } = this.opts;
    if (retained === null || walWarnBytes <= 0) return;
    const over = retained > walWarnBytes;
    metrics.walWarning.set(over ? 1 : 0);
    if (over && Date.now() - this.warnedAt >= (this.opts.warnEveryMs ?? 300_000)) {
      this.warnedAt = Date.now();
      log.warn(
        { slot, retainedBytes: retained, thresholdBytes: walWarnBytes, walStatus },
        `replication slot retains ${formatBytes(retained)} of WAL (threshold ${formatBytes(walWarnBytes)}): the server cannot recycle it until the slot advances`,
      );
    } else if (!over && this.warnedAt !== 0) {
      this.warnedAt = 0;
      log.info({ slot, retainedBytes: retained, thresholdBytes: walWarnBytes }, 'retained WAL back under the threshold');
    }
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
