import { sql, type RawBuilder } from 'kysely';
import type { ContactPayload, Row } from '../mapping/mapper.js';
import type { Lsn } from '../source/lsn.js';
import { jsonParam, type StoreContext } from './context.js';
import type { Trx } from './tx.js';

/**
 * The stream's writes: per-contact state, the coalescing outbox and the durable LSN, in the caller's one
 * transaction (src/outbox/writer.ts decides what to write; these statements keep the table rules).
 *
 * Coalescing: a contact has at most one pending entry. A change replaces its payload and LSN, resets its
 * attempts and makes it due now; what delivery learnt about the contact (op_hint, maybe_ids, maybe_removed)
 * stays. An in-flight entry is another row and is left alone: the new state is sent once it resolves.
 */

/** Second key of the writers' advisory lock; the first is hashtext(schema). */
const OUTBOX_WRITERS = 0x57_43_01;

/**
 * The stream's writer and snapshot chunks take turns, one transaction at a time per connector schema (and
 * across processes: `wooxy-cdc snapshot` runs beside `wooxy-cdc run`). A snapshot chunk decides from the
 * stored state whether its rows are older or newer than what the stream wrote; taking turns keeps that
 * state still between the decision and the write, and two writers upserting the same contacts in different
 * orders can never deadlock. Held until the transaction ends.
 */
export async function takeWriterTurn(ctx: StoreContext, trx: Trx): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${ctx.schema}), ${OUTBOX_WRITERS})`.execute(trx);
}

/** The LSN recorded as durable for this slot ('0/0' when none), read in `db` (a transaction) or the pool. */
export async function readDurableLsn(ctx: StoreContext, slot: string, db: Trx | StoreContext['db'] = ctx.db): Promise<Lsn> {
  const { rows } = await sql<{ lsn: string }>`SELECT durable_lsn::text AS lsn FROM ${ctx.t.repl} WHERE slot = ${slot}`.execute(db);
  return rows[0]?.lsn ?? '0/0';
}

/** Moves the slot's durable LSN forward (never back), in the transaction that made the changes up to it durable. */
export async function recordDurableLsn(ctx: StoreContext, trx: Trx, slot: string, lsn: Lsn): Promise<void> {
  await sql`
    INSERT INTO ${ctx.t.repl} AS r (slot, durable_lsn) VALUES (${slot}, ${lsn}::pg_lsn)
    ON CONFLICT (slot) DO UPDATE SET durable_lsn = GREATEST(r.durable_lsn, EXCLUDED.durable_lsn), updated_at = now()`.execute(trx);
}

/** Stored rows and desired payloads of some contacts (for updates that omit unchanged TOASTed columns). */
export async function loadStates(ctx: StoreContext, trx: Trx, mapping: string, keys: readonly string[]) {
  const { rows } = await sql<{ source_key: string; row: Row | null; desired: ContactPayload | null }>`
    SELECT source_key, row, desired FROM ${ctx.t.state} WHERE mapping = ${mapping} AND source_key = ANY(${keys}::text[])`.execute(trx);
  return rows;
}

/**
 * TRUNCATE of a mapped table: every state is cleared, and every contact that is, or is about to be, in the
 * list gets a pending removal. The states go first (the lock order); the joined `o` is the row as it was.
 */
export async function truncateMapping(ctx: StoreContext, trx: Trx, mapping: string, lsn: Lsn, xid: number | null): Promise<number> {
  const { t } = ctx;
  const r = await sql`
    WITH cleared AS (
      UPDATE ${t.state} s SET row = NULL, desired = NULL, lsn = ${lsn}::pg_lsn, xid = ${xid}::bigint, updated_at = now()
      FROM ${t.state} o WHERE s.mapping = ${mapping} AND o.mapping = s.mapping AND o.source_key = s.source_key
      RETURNING s.source_key, (o.synced IS NOT NULL OR o.desired IS NOT NULL) AS listed
    )
    INSERT INTO ${t.outbox} AS o (mapping, source_key, state, payload, lsn)
    SELECT ${mapping}, source_key, 'pending', NULL, ${lsn}::pg_lsn FROM cleared WHERE listed ORDER BY source_key
    ON CONFLICT (mapping, source_key, state) DO UPDATE SET payload = NULL, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), updated_at = now()`.execute(trx);
  return Number(r.numAffectedRows ?? 0);
}

/** One contact's new state, as the stream computed it. */
export interface StateRecord {
  /** mapping, source key */
  m: string;
  k: string;
  /** The mapped columns now (null: the row is gone). */
  r: Row | null;
  /** The payload the row implies (null: not in the list). */
  d: ContactPayload | null;
  /** The latest change was invalid: keep the stored desired payload. */
  kd: boolean;
  l: Lsn;
  x: number | null;
}

/**
 * A contact dead-lettered as ROW_INVALID whose row is valid again is queued even when its payload equals the
 * stored desired one (the row was fixed back to its last valid version): delivery then finds Wooxy holds it
 * and drops the entry, and its dead letter with it (dropSettled), or sends it and the answer clears it. A
 * primary-key probe of dead_letters, evaluated only for contacts whose payload did not change (the right arm
 * of an OR runs only when the left is false).
 */
export function invalidBefore(ctx: StoreContext, mapping: RawBuilder<unknown>, key: RawBuilder<unknown>): RawBuilder<boolean> {
  return sql<boolean>`EXISTS (SELECT 1 FROM ${ctx.t.dead} dl WHERE dl.mapping = ${mapping} AND dl.source_key = ${key} AND dl.error_code = 'ROW_INVALID')`;
}

/**
 * Upserts the states of a batch and queues a pending entry for each contact whose desired payload changed
 * (or whose row is valid again after a ROW_INVALID dead letter: invalidBefore).
 * `old` reads the states before this statement changes them (every part of a statement sees the same
 * snapshot), so a contact whose payload is unchanged (only unmapped columns changed) gets no entry; jsonb
 * equality ignores key order. It is a primary-key probe per contact on purpose: as a join, the planner (which
 * guesses 100 rows for jsonb_to_recordset) re-scanned the whole batch for every contact that already had a
 * state (16 s for a batch of 4,000 updates). The final SELECT reads the state upserts before the outbox one,
 * which runs them in the lock order (contact_state, then outbox), each in key order.
 */
export async function applyChanges(ctx: StoreContext, trx: Trx, records: readonly StateRecord[]): Promise<number> {
  if (records.length === 0) return 0;
  const { t } = ctx;
  const r = await sql<{ s: number; kept: number; n: number }>`
    WITH x AS (
      SELECT j.m, j.k, NULLIF(j.r, 'null') AS r, NULLIF(j.d, 'null') AS d, j.kd, j.l, j.x,
        (SELECT s.desired FROM ${t.state} s WHERE s.mapping = j.m AND s.source_key = j.k) AS old
      FROM jsonb_to_recordset(${jsonParam(records)}) AS j(m text, k text, r jsonb, d jsonb, kd boolean, l pg_lsn, x bigint)
    ), state AS (
      INSERT INTO ${t.state} AS s (mapping, source_key, row, desired, lsn, xid)
      SELECT m, k, r, d, l, x FROM x WHERE NOT kd ORDER BY m, k
      ON CONFLICT (mapping, source_key) DO UPDATE
        SET row = EXCLUDED.row, desired = EXCLUDED.desired, lsn = EXCLUDED.lsn, xid = EXCLUDED.xid, updated_at = now()
      RETURNING 1
    ), kept AS (
      INSERT INTO ${t.state} AS s (mapping, source_key, row, desired, lsn, xid)
      SELECT m, k, r, NULL, l, x FROM x WHERE kd ORDER BY m, k
      ON CONFLICT (mapping, source_key) DO UPDATE SET row = EXCLUDED.row, lsn = EXCLUDED.lsn, xid = EXCLUDED.xid, updated_at = now()
      RETURNING 1
    ), queued AS (
      INSERT INTO ${t.outbox} AS o (mapping, source_key, state, payload, lsn)
      SELECT m, k, 'pending', d, l FROM x
      WHERE NOT kd AND (old IS DISTINCT FROM d OR ${invalidBefore(ctx, sql`m`, sql`k`)})
      ORDER BY m, k
      ON CONFLICT (mapping, source_key, state) DO UPDATE
        SET payload = EXCLUDED.payload, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM state)::int AS s, (SELECT count(*) FROM kept)::int AS kept, (SELECT count(*) FROM queued)::int AS n`.execute(trx);
  return r.rows[0]?.n ?? 0;
}

/**
 * Refreshes the planner's statistics of the outbox and contact states. A backlog fills a fresh outbox far
 * faster than autovacuum analyzes it, and without statistics Postgres takes most entries for in-flight ones
 * (see OutboxWriter.analyzeAfterGrowth). A role that does not own the tables gets a warning, not an error.
 */
export async function analyzeQueue(ctx: StoreContext): Promise<void> {
  await sql`ANALYZE ${ctx.t.outbox}, ${ctx.t.state}`.execute(ctx.db);
}
