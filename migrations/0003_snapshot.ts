import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Snapshots (src/snapshot/):
 * snapshot_progress  one row per mapping: the keyset cursor (the last key written, as text), rows done, the
 *                    estimate of rows in the table, the watermark LSN of the last chunk, and when it started,
 *                    moved and finished. Written in the same transaction as each chunk, so a restart resumes
 *                    after the last chunk that is durable.
 * contact_state.xid  the top-level transaction id (32 bits, as pgoutput sends it) of the stream change that
 *                    wrote the state; NULL when a snapshot chunk wrote it (its lsn is then the chunk's
 *                    watermark). A snapshot chunk compares it with the chunk's MVCC snapshot to tell whether
 *                    the stream's version of the row is older or newer than the one it read.
 */
export function snapshot(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE ${s}.snapshot_progress (
        mapping text PRIMARY KEY,
        cursor text,
        rows_done bigint NOT NULL DEFAULT 0,
        rows_total bigint,
        chunks_done integer NOT NULL DEFAULT 0,
        watermark pg_lsn,
        started_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
      )`.execute(db);
      await sql`ALTER TABLE ${s}.contact_state ADD COLUMN xid bigint`.execute(db);
    },
  };
}
