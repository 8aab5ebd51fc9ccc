import { sql, type RawBuilder } from 'kysely';
import type { SnapshotChunk } from '../snapshot/types.js';
import { invalidBefore } from './capture.js';
import { jsonParam, type StoreContext } from './context.js';
import type { Trx } from './tx.js';

/** One row of a chunk as the snapshot writer computed it: key, mapped columns, desired payload, invalid. */
export interface ChunkRecord {
  k: string;
  r: unknown;
  d: unknown;
  kd: boolean;
}

/** The chunk's contact keys that have no stored state (the ones applyChunk needs the source's word on). */
export async function keysWithoutState(ctx: StoreContext, trx: Trx, mapping: string, keys: readonly string[]): Promise<string[]> {
  const { rows } = await sql<{ k: string }>`
    SELECT x.k FROM unnest(${[...keys]}::text[]) AS x(k)
    WHERE NOT EXISTS (SELECT 1 FROM ${ctx.t.state} s WHERE s.mapping = ${mapping} AND s.source_key = x.k)`.execute(trx);
  return rows.map((r) => r.k);
}

/**
 * The CASE arms that say whether a stored state is older than a chunk's read (watermark S), over the columns
 * `sxid`, `slsn`, `full0` (the xid widened with the snapshot's epoch), `xmax` and `snapshot`: written by the
 * stream (xid set) in a transaction the read's snapshot saw, or by a snapshot chunk (xid null) from an older
 * read. One test for applyChunk and sweepChunk.
 */
function storedBeforeRead(S: string): RawBuilder<unknown> {
  return sql`WHEN sxid IS NULL THEN slsn < ${S}::pg_lsn
        ELSE pg_visible_in_snapshot(GREATEST(3, CASE
               WHEN full0 > xmax + 2147483648 THEN full0 - 4294967296
               WHEN full0 < xmax - 2147483648 THEN full0 + 4294967296
               ELSE full0 END)::text::xid8, snapshot)`;
}

/**
 * One statement: decide row by row whether the chunk's version is at least as new as the stored one, then
 * upsert the state and the pending outbox entries of those rows (state first: the lock order). A stored
 * state is older when:
 *   - there is none, and the row was found at the source after the writers' turn was taken (`present`, from
 *     keysWithoutState then the source): else a delete streamed after the read, whose state delivery may
 *     already have collected, would be undone. A key whose state was collected between that lookup and this
 *     statement is not in `present` and is left alone: its state said deleted, so any newer version of the row
 *     is one the stream has still to deliver;
 *   - the stream wrote it (xid set) in a transaction the chunk's snapshot saw;
 *   - a snapshot chunk wrote it (xid null) from an older read (lsn = that chunk's watermark).
 * The 32-bit xid gets its epoch from the snapshot's xmax: the two are within 2^31 of each other. The
 * reasoning is in src/snapshot/runner.ts.
 */
export async function applyChunk(
  ctx: StoreContext,
  trx: Trx,
  chunk: SnapshotChunk,
  records: readonly ChunkRecord[],
  present: readonly string[],
): Promise<{ applied: number; queued: number; invalid: string[] }> {
  const { state, outbox } = ctx.t;
  const m = chunk.mapping;
  const S = chunk.watermark;
  const r = await sql<{ applied: number; queued: number; invalid: string[] }>`
    WITH snap AS (
      SELECT ${chunk.snapshot}::pg_snapshot AS s, pg_snapshot_xmax(${chunk.snapshot}::pg_snapshot)::text::bigint AS xmax
    ), x AS (
      SELECT k, NULLIF(r, 'null') AS r, NULLIF(d, 'null') AS d, kd
      FROM jsonb_to_recordset(${jsonParam(records)}) AS x(k text, r jsonb, d jsonb, kd boolean)
    ), cur AS (
      -- LIMIT 1 keeps both lookups per row, by index: a hash join would read the whole table per chunk.
      SELECT x.*, s.source_key IS NOT NULL AS had, s.desired AS old, s.lsn AS slsn, s.xid AS sxid,
             ((snap.xmax >> 32) << 32) | s.xid AS full0, snap.xmax, snap.s AS snapshot
      FROM x CROSS JOIN snap
      LEFT JOIN LATERAL (SELECT * FROM ${state} s WHERE s.mapping = ${m} AND s.source_key = x.k LIMIT 1) s ON true
    ), ok AS (
      SELECT k, r, d, kd, old FROM cur WHERE CASE
        WHEN NOT had THEN k = ANY(${[...present]}::text[])
        ${storedBeforeRead(S)}
      END
    ), upserted AS (
      INSERT INTO ${state} AS s (mapping, source_key, row, desired, lsn, xid)
      SELECT ${m}, k, r, d, ${S}::pg_lsn, NULL FROM ok WHERE NOT kd ORDER BY k
      ON CONFLICT (mapping, source_key) DO UPDATE
        SET row = EXCLUDED.row, desired = EXCLUDED.desired, lsn = EXCLUDED.lsn, xid = NULL, updated_at = now()
        WHERE s.row IS DISTINCT FROM EXCLUDED.row OR s.desired IS DISTINCT FROM EXCLUDED.desired
      RETURNING 1
    ), kept AS (
      INSERT INTO ${state} AS s (mapping, source_key, row, desired, lsn, xid)
      SELECT ${m}, k, r, NULL, ${S}::pg_lsn, NULL FROM ok WHERE kd ORDER BY k
      ON CONFLICT (mapping, source_key) DO UPDATE SET row = EXCLUDED.row, lsn = EXCLUDED.lsn, xid = NULL, updated_at = now()
        WHERE s.row IS DISTINCT FROM EXCLUDED.row
      RETURNING 1
    ), queued AS (
      INSERT INTO ${outbox} (mapping, source_key, state, payload, lsn)
      SELECT ${m}, k, 'pending', d, ${S}::pg_lsn FROM ok WHERE NOT kd AND (old IS DISTINCT FROM d OR ${invalidBefore(ctx, sql`${m}`, sql`k`)}) ORDER BY k
      ON CONFLICT (mapping, source_key, state) DO UPDATE
        SET payload = EXCLUDED.payload, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()
      RETURNING 1
    )
    -- The state upserts are read first, so they run before the outbox upsert: the lock order.
    SELECT (SELECT count(*) FROM upserted) AS u, (SELECT count(*) FROM kept) AS kp, (SELECT count(*) FROM ok)::int AS applied,
           (SELECT count(*) FROM queued)::int AS queued,
           (SELECT coalesce(jsonb_agg(k), '[]'::jsonb) FROM ok WHERE kd) AS invalid`.execute(trx);
  const row = r.rows[0];
  return row ? { applied: Number(row.applied), queued: row.queued, invalid: row.invalid } : { applied: 0, queued: 0, invalid: [] };
}

/**
 * Resync: every contact of the chunk that is, or should be, in the list gets a pending entry with its
 * current desired payload. Delivery skips a payload equal to `synced` (what Wooxy was last told), so
 * where the two are equal `synced` is cleared and its identifiers kept in `maybe_ids`, with the hint
 * 'update': the contact is updated by its identifiers (added if Wooxy answers it does not exist), and
 * `synced` is set again when Wooxy confirms. Where they differ, delivery sends anyway and the addressing by
 * the synced identifiers (an email change) is left as it is. The entry's LSN is at least the watermark, so
 * it waits for the stream like any snapshot entry. Returns the chunk's contacts that have a pending entry.
 */
export async function forceResend(ctx: StoreContext, trx: Trx, mapping: string, watermark: string, keys: readonly string[]): Promise<number> {
  const { state, outbox } = ctx.t;
  const ids = (col: string) =>
    sql`NULLIF(jsonb_strip_nulls(jsonb_build_object('userId', NULLIF(${sql.ref(col)}->>'userId', ''), 'email', NULLIF(${sql.ref(col)}->>'email', ''),
      'phoneNumber', NULLIF(${sql.ref(col)}->>'phoneNumber', ''))), '{}'::jsonb)`;
  const sorted = [...keys].sort();
  await sql`
    WITH cur AS (
      SELECT s.source_key, s.desired, s.synced, s.lsn FROM ${state} s
      WHERE s.mapping = ${mapping} AND s.source_key = ANY(${sorted}::text[]) AND (s.desired IS NOT NULL OR s.synced IS NOT NULL)
      ORDER BY s.source_key
    ), cleared AS (
      UPDATE ${state} s SET synced = NULL, updated_at = now() FROM cur
      WHERE s.mapping = ${mapping} AND s.source_key = cur.source_key AND cur.desired = cur.synced
      RETURNING s.source_key
    ), forced AS (
      INSERT INTO ${outbox} AS o (mapping, source_key, state, payload, lsn, op_hint, maybe_ids)
      SELECT ${mapping}, cur.source_key, 'pending', cur.desired, GREATEST(cur.lsn, ${watermark}::pg_lsn),
             CASE WHEN c.source_key IS NOT NULL THEN 'update' END, CASE WHEN c.source_key IS NOT NULL THEN ${ids('cur.synced')} END
      FROM cur LEFT JOIN cleared c ON c.source_key = cur.source_key
      ORDER BY cur.source_key
      ON CONFLICT (mapping, source_key, state) DO UPDATE
        SET payload = EXCLUDED.payload, lsn = EXCLUDED.lsn, op_hint = COALESCE(o.op_hint, EXCLUDED.op_hint),
            maybe_ids = CASE WHEN EXCLUDED.maybe_ids IS NULL THEN o.maybe_ids ELSE COALESCE(o.maybe_ids, '{}'::jsonb) || EXCLUDED.maybe_ids END,
            attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM cleared), (SELECT count(*) FROM forced)`.execute(trx);
  // Counted apart: a contact both changed and forced is one entry, not two.
  const q = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM ${outbox} WHERE mapping = ${mapping} AND state = 'pending' AND source_key = ANY(${sorted}::text[])`.execute(trx);
  return q.rows[0]?.n ?? 0;
}

/** The next contact keys of a mapping after `after` (text order): what a reconciliation's sweep checks. */
export async function listContactKeys(ctx: StoreContext, mapping: string, after: string | null, limit: number): Promise<string[]> {
  let q = ctx.db.selectFrom('contact_state').select('source_key').where('mapping', '=', mapping).orderBy('source_key').limit(limit);
  if (after !== null) q = q.where('source_key', '>', after);
  return (await q.execute()).map((r) => r.source_key);
}

/**
 * A reconciliation's sweep: contacts whose rows a read found gone become removals, where the stored state is
 * not newer than that read (the same test as applyChunk's: a row inserted again after the read, which the
 * stream has already written, stays). The state is cleared first (the lock order), then each contact that
 * is or may be in Wooxy gets a pending removal at the read's watermark. Returns the removals queued.
 */
export async function sweepChunk(ctx: StoreContext, trx: Trx, chunk: { mapping: string; keys: readonly string[]; watermark: string; snapshot: string }): Promise<number> {
  if (chunk.keys.length === 0) return 0;
  const { state, outbox } = ctx.t;
  const m = chunk.mapping;
  const S = chunk.watermark;
  const r = await sql<{ removals: number }>`
    WITH snap AS (
      SELECT ${chunk.snapshot}::pg_snapshot AS s, pg_snapshot_xmax(${chunk.snapshot}::pg_snapshot)::text::bigint AS xmax
    ), cur AS (
      SELECT s.source_key AS k, s.desired AS old, s.synced, s.lsn AS slsn, s.xid AS sxid,
             ((snap.xmax >> 32) << 32) | s.xid AS full0, snap.xmax, snap.s AS snapshot
      FROM unnest(${[...chunk.keys].sort()}::text[]) AS x(k) CROSS JOIN snap
      JOIN ${state} s ON s.mapping = ${m} AND s.source_key = x.k
    ), ok AS (
      SELECT k, old, synced FROM cur WHERE CASE
        ${storedBeforeRead(S)}
      END
    ), cleared AS (
      UPDATE ${state} s SET row = NULL, desired = NULL, lsn = ${S}::pg_lsn, xid = NULL, updated_at = now()
      FROM ok WHERE s.mapping = ${m} AND s.source_key = ok.k AND (s.row IS NOT NULL OR s.desired IS NOT NULL)
      RETURNING 1
    ), queued AS (
      INSERT INTO ${outbox} AS o (mapping, source_key, state, payload, lsn)
      SELECT ${m}, k, 'pending', NULL, ${S}::pg_lsn FROM ok WHERE old IS NOT NULL OR synced IS NOT NULL ORDER BY k
      ON CONFLICT (mapping, source_key, state) DO UPDATE
        SET payload = NULL, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM cleared) AS c, (SELECT count(*) FROM queued)::int AS removals`.execute(trx);
  return r.rows[0]?.removals ?? 0;
}
