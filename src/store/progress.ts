import { sql } from 'kysely';
import type { Lsn } from '../source/lsn.js';
import type { StoreContext } from './context.js';
import { withRetries } from './retry.js';
import type { Trx } from './tx.js';

/**
 * The snapshot_progress table: one row per mapping, advanced in the transaction of each chunk, so a restart
 * resumes after the last chunk that is durable. A reconciling snapshot has two phases: `rows` reads the
 * table in key order (as any snapshot), then `sweep` walks the contact states in key order and removes the
 * contacts whose rows are gone; it is finished only after both.
 */
export interface SnapshotProgress {
  mapping: string;
  /** The last key written (text form of the key column); null before the first chunk. */
  cursor: string | null;
  rowsDone: number;
  rowsTotal: number | null;
  chunksDone: number;
  watermark: Lsn | null;
  startedAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  /** Also remove the contacts whose rows are gone (a sweep after the rows). */
  reconcile: boolean;
  /** Why this snapshot runs (a changed mapping, a lost slot, an operator's command …). */
  reason: string | null;
  phase: 'rows' | 'sweep';
  /** The last contact key the sweep checked. */
  sweepCursor: string | null;
  /** Contacts the sweep queued for removal. */
  removed: number;
}

interface ProgressRow {
  mapping: string;
  cursor: string | null;
  rows_done: string;
  rows_total: string | null;
  chunks_done: number;
  watermark: string | null;
  started_at: Date;
  updated_at: Date;
  finished_at: Date | null;
  reconcile: boolean;
  reason: string | null;
  phase: 'rows' | 'sweep';
  sweep_cursor: string | null;
  removed: string;
}

const fromRow = (r: ProgressRow): SnapshotProgress => ({
  mapping: r.mapping,
  cursor: r.cursor,
  rowsDone: Number(r.rows_done),
  rowsTotal: r.rows_total === null ? null : Number(r.rows_total),
  chunksDone: r.chunks_done,
  watermark: r.watermark,
  startedAt: r.started_at,
  updatedAt: r.updated_at,
  finishedAt: r.finished_at,
  reconcile: r.reconcile,
  reason: r.reason,
  phase: r.phase,
  sweepCursor: r.sweep_cursor,
  removed: Number(r.removed),
});

export interface BeginOptions {
  reconcile?: boolean;
  reason?: string | null;
}

export class ProgressStore {
  private readonly t;
  private readonly db;

  constructor(ctx: StoreContext) {
    this.t = ctx.t.progress;
    this.db = ctx.db;
  }

  async get(mapping: string): Promise<SnapshotProgress | null> {
    const { rows } = await sql<ProgressRow>`SELECT *, watermark::text AS watermark FROM ${this.t} WHERE mapping = ${mapping}`.execute(this.db);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Every mapping's progress (for status reports), by mapping name. */
  async list(): Promise<SnapshotProgress[]> {
    const { rows } = await sql<ProgressRow>`SELECT *, watermark::text AS watermark FROM ${this.t} ORDER BY mapping`.execute(this.db);
    return rows.map(fromRow);
  }

  /**
   * Starts (or restarts) a mapping's snapshot from its first key. In `trx` when given: a reconciliation asked
   * for together with what made it necessary (a new fingerprint, a recorded stop) is durable with it.
   */
  async begin(mapping: string, rowsTotal: number | null, opts: BeginOptions = {}, trx?: Trx): Promise<SnapshotProgress> {
    const { rows } = await withRetries(() =>
      sql<ProgressRow>`
        INSERT INTO ${this.t} (mapping, rows_total, reconcile, reason) VALUES (${mapping}, ${rowsTotal}, ${opts.reconcile ?? false}, ${opts.reason ?? null})
        ON CONFLICT (mapping) DO UPDATE SET cursor = NULL, rows_done = 0, rows_total = EXCLUDED.rows_total, chunks_done = 0, watermark = NULL,
          started_at = now(), updated_at = now(), finished_at = NULL, reconcile = EXCLUDED.reconcile, reason = EXCLUDED.reason,
          phase = 'rows', sweep_cursor = NULL, removed = 0
        RETURNING *, watermark::text AS watermark`.execute(trx ?? this.db),
    );
    return fromRow(rows[0]!);
  }

  /**
   * Records a chunk of rows, inside the chunk's own transaction: the cursor is durable exactly when its rows
   * are. The last chunk finishes a plain snapshot, and moves a reconciling one on to its sweep.
   */
  async advance(trx: Trx, mapping: string, chunk: { cursor: string | null; rows: number; watermark: Lsn; finished: boolean }): Promise<void> {
    await sql`
      UPDATE ${this.t} SET cursor = COALESCE(${chunk.cursor}, cursor), rows_done = rows_done + ${chunk.rows}, chunks_done = chunks_done + 1,
        rows_total = CASE WHEN ${chunk.finished} THEN rows_done + ${chunk.rows} WHEN rows_total IS NULL THEN NULL
          ELSE GREATEST(rows_total, rows_done + ${chunk.rows}) END,
        watermark = ${chunk.watermark}::pg_lsn, updated_at = now(),
        phase = CASE WHEN ${chunk.finished} AND reconcile THEN 'sweep' ELSE phase END,
        finished_at = CASE WHEN ${chunk.finished} AND NOT reconcile THEN now() END
      WHERE mapping = ${mapping}`.execute(trx);
  }

  /** The rows ran out (an empty last chunk): a plain snapshot is finished, a reconciling one sweeps next. */
  async finishRows(mapping: string): Promise<void> {
    await withRetries(() =>
      sql`UPDATE ${this.t} SET rows_total = rows_done, updated_at = now(),
            phase = CASE WHEN reconcile THEN 'sweep' ELSE phase END, finished_at = CASE WHEN reconcile THEN NULL ELSE now() END
          WHERE mapping = ${mapping}`.execute(this.db),
    );
  }

  /** Records a chunk of the sweep, in its transaction; the last one finishes the reconciliation. */
  async advanceSweep(trx: Trx, mapping: string, chunk: { cursor: string | null; removed: number; finished: boolean }): Promise<void> {
    await sql`
      UPDATE ${this.t} SET sweep_cursor = COALESCE(${chunk.cursor}, sweep_cursor), removed = removed + ${chunk.removed}, updated_at = now(),
        finished_at = CASE WHEN ${chunk.finished} THEN now() END
      WHERE mapping = ${mapping}`.execute(trx);
  }
}
