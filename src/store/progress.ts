import { sql } from 'kysely';
import type { Lsn } from '../source/lsn.js';
import type { StoreContext } from './context.js';
import { withRetries } from './retry.js';
import type { Trx } from './tx.js';

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
});

/** The snapshot_progress table: one row per mapping, advanced in the transaction of each chunk. */
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

  /** Starts (or restarts) a mapping's snapshot from its first key. */
  async begin(mapping: string, rowsTotal: number | null): Promise<SnapshotProgress> {
    const { rows } = await sql<ProgressRow>`
      INSERT INTO ${this.t} (mapping, rows_total) VALUES (${mapping}, ${rowsTotal})
      ON CONFLICT (mapping) DO UPDATE SET cursor = NULL, rows_done = 0, rows_total = EXCLUDED.rows_total, chunks_done = 0, watermark = NULL,
        started_at = now(), updated_at = now(), finished_at = NULL
      RETURNING *, watermark::text AS watermark`.execute(this.db);
    return fromRow(rows[0]!);
  }

  /** Records a chunk, inside the chunk's own transaction: the cursor is durable exactly when its rows are. */
  async advance(trx: Trx, mapping: string, chunk: { cursor: string | null; rows: number; watermark: Lsn; finished: boolean }): Promise<void> {
    await sql`
      UPDATE ${this.t} SET cursor = COALESCE(${chunk.cursor}, cursor), rows_done = rows_done + ${chunk.rows}, chunks_done = chunks_done + 1,
        rows_total = CASE WHEN ${chunk.finished} THEN rows_done + ${chunk.rows} WHEN rows_total IS NULL THEN NULL
          ELSE GREATEST(rows_total, rows_done + ${chunk.rows}) END,
        watermark = ${chunk.watermark}::pg_lsn, updated_at = now(),
        finished_at = CASE WHEN ${chunk.finished} THEN now() END
      WHERE mapping = ${mapping}`.execute(trx);
  }

  /** Marks a snapshot finished when its last chunk came back empty. */
  async finish(mapping: string): Promise<void> {
    await withRetries(() => sql`UPDATE ${this.t} SET finished_at = now(), rows_total = rows_done, updated_at = now() WHERE mapping = ${mapping}`.execute(this.db));
  }
}
