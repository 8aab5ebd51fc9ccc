import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';
import type { Mapper, Row } from '../mapping/mapper.js';
import type { SnapshotChunk, SourceTable } from '../snapshot/types.js';
import { recordInvalidRows, type InvalidRow } from './dead-letters.js';
import { desiredOf } from './desired.js';
import { takeWriterTurn } from './writer-lock.js';

export interface SnapshotWriteOptions {
  source: SourceTable;
  /**
   * Resync: make delivery send each contact of the chunk again even when its payload is what Wooxy was
   * last told (see `force` below).
   */
  force?: boolean;
  /** Runs inside the chunk's transaction, after its rows (the runner persists its cursor here). */
  inTransaction?: (trx: Transaction<Database>) => Promise<void>;
}

export interface SnapshotWriteOutcome {
  /** Rows applied to the contact state (the others were older than what the stream had written). */
  applied: number;
  /** Rows older than a version the stream had already applied, or gone from the source: left alone. */
  skipped: number;
  /** Contacts given a pending outbox entry (with `force`: the chunk's contacts that have one now). */
  enqueued: number;
  deadLettered: number;
}

/** Prefix of the logical message each chunk writes (see `write`). */
export const WATERMARK_MESSAGE_PREFIX = 'wooxy-cdc.snapshot';

/**
 * Applies snapshot chunks to the per-contact state and the coalescing outbox — the same tables, projection
 * and no-op rule as the stream's OutboxWriter — but only where the row read is at least as new as the
 * version already stored (the ordering argument is in src/snapshot/runner.ts). One transaction per chunk,
 * set-based: one statement for every row, whatever the chunk size.
 */
export class SnapshotWriter {
  private readonly t: { state: ReturnType<typeof sql.id>; outbox: ReturnType<typeof sql.id> };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly schema: string,
    private readonly mappers: ReadonlyMap<string, Mapper>,
  ) {
    this.t = { state: sql.id(schema, 'contact_state'), outbox: sql.id(schema, 'outbox') };
  }

  async write(chunk: SnapshotChunk, options: SnapshotWriteOptions): Promise<SnapshotWriteOutcome> {
    const mapper = this.mappers.get(chunk.mapping);
    if (!mapper) throw new Error(`unknown mapping ${chunk.mapping}`);
    const invalid = new Map<string, InvalidRow>();
    const records: Array<{ k: string; r: Row; d: unknown; kd: boolean }> = [];
    for (const row of chunk.rows) {
      const key = mapper.keyOf(row);
      if (key === null) continue;
      const d = desiredOf(mapper, row);
      if (d.ok) records.push({ k: key, r: row, d: d.desired, kd: false });
      else {
        // Like the stream: an invalid row is dead-lettered and the contact keeps its last valid desired state.
        records.push({ k: key, r: row, d: null, kd: true });
        invalid.set(key, { mapping: chunk.mapping, key, op: 'add', payload: row, message: d.message });
      }
    }
    return this.db.transaction().execute(async (trx) => {
      await takeWriterTurn(trx, this.schema);
      const outcome: SnapshotWriteOutcome = { applied: 0, skipped: 0, enqueued: 0, deadLettered: 0 };
      if (records.length > 0) {
        const applied = await this.apply(trx, chunk, options.source, records);
        outcome.applied = applied.applied;
        outcome.skipped = records.length - applied.applied;
        outcome.enqueued = applied.queued;
        const dead = applied.invalid.map((k) => invalid.get(k)!).filter(Boolean);
        await recordInvalidRows(trx, this.schema, dead);
        outcome.deadLettered = dead.length;
        if (options.force) outcome.enqueued = await this.force(trx, chunk, records.map((r) => r.k));
      }
      await options.inTransaction?.(trx);
      // Delivery sends an entry only once the stream's durable LSN has passed the entry's LSN (here: the
      // watermark). The stream records progress only at commits of transactions it decodes, and Postgres
      // skips transactions that touch no published table; this message gives it one past the watermark
      // even when the mapped tables are idle.
      await sql`SELECT pg_logical_emit_message(true, ${WATERMARK_MESSAGE_PREFIX}, ${JSON.stringify({ mapping: chunk.mapping, watermark: chunk.watermark })})`.execute(trx);
      return outcome;
    });
  }

  /**
   * One statement: decide row by row whether the chunk's version is at least as new as the stored one, then
   * upsert the state and the pending outbox entries of those rows. A stored state is older when:
   *   - there is none, and the row still exists at the source (else a delete streamed after the read, whose
   *     state delivery may already have collected, would be undone);
   *   - the stream wrote it (xid set) in a transaction the chunk's snapshot saw;
   *   - a snapshot chunk wrote it (xid null) from an older read (lsn = that chunk's watermark).
   * The 32-bit xid gets its epoch from the snapshot's xmax: the two are within 2^31 of each other.
   */
  private async apply(trx: Transaction<Database>, chunk: SnapshotChunk, src: SourceTable, records: unknown[]) {
    const { state, outbox } = this.t;
    const m = chunk.mapping;
    const S = chunk.watermark;
    const r = await sql<{ applied: number; queued: number; invalid: string[] }>`
      WITH snap AS (
        SELECT ${chunk.snapshot}::pg_snapshot AS s, pg_snapshot_xmax(${chunk.snapshot}::pg_snapshot)::text::bigint AS xmax
      ), x AS (
        SELECT k, NULLIF(r, 'null') AS r, NULLIF(d, 'null') AS d, kd
        FROM jsonb_to_recordset(${JSON.stringify(records)}::jsonb) AS x(k text, r jsonb, d jsonb, kd boolean)
      ), cur AS (
        -- LIMIT 1 keeps both lookups per row, by index: a hash join would read the whole table per chunk.
        SELECT x.*, s.source_key IS NOT NULL AS had, s.desired AS old, s.lsn AS slsn, s.xid AS sxid, e.present,
               ((snap.xmax >> 32) << 32) | s.xid AS full0, snap.xmax, snap.s AS snapshot
        FROM x CROSS JOIN snap
        LEFT JOIN LATERAL (SELECT * FROM ${state} s WHERE s.mapping = ${m} AND s.source_key = x.k LIMIT 1) s ON true
        LEFT JOIN LATERAL (SELECT true AS present FROM ${sql.raw(src.qualified)} t
                           WHERE s.source_key IS NULL AND t.${sql.raw(src.key)} = x.k::${sql.raw(src.keyType)} LIMIT 1) e ON true
      ), ok AS (
        SELECT k, r, d, kd, old FROM cur WHERE CASE
          WHEN NOT had THEN present IS NOT NULL
          WHEN sxid IS NULL THEN slsn < ${S}::pg_lsn
          ELSE pg_visible_in_snapshot(GREATEST(3, CASE
                 WHEN full0 > xmax + 2147483648 THEN full0 - 4294967296
                 WHEN full0 < xmax - 2147483648 THEN full0 + 4294967296
                 ELSE full0 END)::text::xid8, snapshot)
        END
      ), upserted AS (
        INSERT INTO ${state} AS s (mapping, source_key, row, desired, lsn, xid)
        SELECT ${m}, k, r, d, ${S}::pg_lsn, NULL FROM ok WHERE NOT kd
        ON CONFLICT (mapping, source_key) DO UPDATE
          SET row = EXCLUDED.row, desired = EXCLUDED.desired, lsn = EXCLUDED.lsn, xid = NULL, updated_at = now()
          WHERE s.row IS DISTINCT FROM EXCLUDED.row OR s.desired IS DISTINCT FROM EXCLUDED.desired
      ), kept AS (
        INSERT INTO ${state} AS s (mapping, source_key, row, desired, lsn, xid)
        SELECT ${m}, k, r, NULL, ${S}::pg_lsn, NULL FROM ok WHERE kd
        ON CONFLICT (mapping, source_key) DO UPDATE SET row = EXCLUDED.row, lsn = EXCLUDED.lsn, xid = NULL, updated_at = now()
          WHERE s.row IS DISTINCT FROM EXCLUDED.row
      ), queued AS (
        INSERT INTO ${outbox} (mapping, source_key, state, payload, lsn)
        SELECT ${m}, k, 'pending', d, ${S}::pg_lsn FROM ok WHERE NOT kd AND old IS DISTINCT FROM d
        ON CONFLICT (mapping, source_key, state) DO UPDATE
          SET payload = EXCLUDED.payload, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM ok)::int AS applied, (SELECT count(*) FROM queued)::int AS queued,
             (SELECT coalesce(jsonb_agg(k), '[]'::jsonb) FROM ok WHERE kd) AS invalid`.execute(trx);
    return r.rows[0] ?? { applied: 0, queued: 0, invalid: [] };
  }

  /**
   * Resync: every contact of the chunk that is, or should be, in the list gets a pending entry with its
   * current desired payload. Delivery skips a payload equal to `synced` (what Wooxy was last told), so
   * where the two are equal `synced` is cleared and its identifiers kept in `maybe_ids`, with the hint
   * 'update': the contact is updated by its identifiers (added if Wooxy answers it does not exist), and
   * `synced` is set again when Wooxy confirms. Where they differ, delivery sends anyway and the addressing by
   * the synced identifiers (an email change) is left as it is. The entry's LSN is at least the watermark, so
   * it waits for the stream like any snapshot entry.
   */
  private async force(trx: Transaction<Database>, chunk: SnapshotChunk, keys: string[]): Promise<number> {
    const { state, outbox } = this.t;
    const m = chunk.mapping;
    const ids = (col: string) =>
      sql`NULLIF(jsonb_strip_nulls(jsonb_build_object('userId', NULLIF(${sql.ref(col)}->>'userId', ''), 'email', NULLIF(${sql.ref(col)}->>'email', ''),
        'phoneNumber', NULLIF(${sql.ref(col)}->>'phoneNumber', ''))), '{}'::jsonb)`;
    await sql`
      WITH cur AS (
        SELECT s.source_key, s.desired, s.synced, s.lsn FROM ${state} s
        WHERE s.mapping = ${m} AND s.source_key = ANY(${keys}::text[]) AND (s.desired IS NOT NULL OR s.synced IS NOT NULL)
      ), cleared AS (
        UPDATE ${state} s SET synced = NULL, updated_at = now() FROM cur
        WHERE s.mapping = ${m} AND s.source_key = cur.source_key AND cur.desired = cur.synced
        RETURNING s.source_key
      ), forced AS (
        INSERT INTO ${outbox} AS o (mapping, source_key, state, payload, lsn, op_hint, maybe_ids)
        SELECT ${m}, cur.source_key, 'pending', cur.desired, GREATEST(cur.lsn, ${chunk.watermark}::pg_lsn),
               CASE WHEN c.source_key IS NOT NULL THEN 'update' END, CASE WHEN c.source_key IS NOT NULL THEN ${ids('cur.synced')} END
        FROM cur LEFT JOIN cleared c ON c.source_key = cur.source_key
        ON CONFLICT (mapping, source_key, state) DO UPDATE
          SET payload = EXCLUDED.payload, lsn = EXCLUDED.lsn, op_hint = COALESCE(o.op_hint, EXCLUDED.op_hint),
              maybe_ids = CASE WHEN EXCLUDED.maybe_ids IS NULL THEN o.maybe_ids ELSE COALESCE(o.maybe_ids, '{}'::jsonb) || EXCLUDED.maybe_ids END,
              attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()
      )
      SELECT 1`.execute(trx);
    // Counted apart: a contact both changed and forced is one entry, not two.
    const q = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM ${outbox} WHERE mapping = ${m} AND state = 'pending' AND source_key = ANY(${keys}::text[])`.execute(trx);
    return q.rows[0]?.n ?? 0;
  }
}
