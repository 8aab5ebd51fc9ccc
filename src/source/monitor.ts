import { sql } from 'kysely';
import { BackgroundLoop } from '../lib/loop.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { StoreContext } from '../store/context.js';
import { countDeadLetters } from '../store/dead-letters.js';
import { outboxDepth } from '../store/status.js';

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
  ctx: StoreContext;
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
  private warnedAt = 0;
  private readonly loop: BackgroundLoop;

  constructor(private readonly opts: SlotMonitorOptions) {
    this.loop = new BackgroundLoop({
      name: 'slot monitor',
      log: opts.log,
      intervalMs: opts.intervalMs ?? 5_000,
      failureLevel: 'debug',
      tick: async () => void (await this.sample()),
    });
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  async sample(): Promise<SlotStats> {
    const { ctx, metrics } = this.opts;
    const slot = await sql<{ lag: string | null; retained: string | null; confirmed: string | null; wal_status: string | null }>`
      SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag,
             pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained,
             confirmed_flush_lsn::text AS confirmed, wal_status
      FROM pg_replication_slots WHERE slot_name = ${this.opts.slot}`.execute(ctx.source);
    const outbox = await outboxDepth(ctx);
    const dead = await countDeadLetters(ctx);

    const s = slot.rows[0];
    const lag = s?.lag == null ? null : Number(s.lag);
    const retained = s?.retained == null ? null : Number(s.retained);
    if (lag !== null) metrics.replicationLagBytes.set(lag);
    if (retained !== null) metrics.retainedWalBytes.set(retained);
    for (const [state, n] of Object.entries(outbox)) metrics.outboxDepth.set({ state }, n);
    metrics.deadLetterContacts.reset();
    for (const r of dead) metrics.deadLetterContacts.set({ mapping: r.mapping, code: r.code }, r.n);
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
