import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/index.js';
import type { IdentifierField } from '../mapping/contact-fields.js';
import type { StoreContext } from './context.js';
import { byContact, jsonParam } from './context.js';
import { withRetries } from './retry.js';
import { transaction, type Trx } from './tx.js';

/**
 * The dead-letter table: one row per contact that is not in sync now and will not be without a change, with
 * the code and the message that say why. Written by the stream and snapshots (ROW_INVALID: the vendor's
 * rules reject the row), by delivery (a documented rejection of the contact) and by reconciliation (a
 * per-contact error Wooxy reported; IDENTIFIER_TAKEN: another contact of the mapping holds an identifier).
 *
 * It describes the present, so `wooxy_cdc_dead_letter_contacts` (sampled from it) counts contacts out of
 * sync now. A dead letter goes when its contact syncs after all: Wooxy confirms a call of it
 * (settleDeadLetters), delivery finds nothing left to send (dropSettled in delivery.ts), the contact it
 * names as blocking it lets go of the identifier (settleDeadLetters), or the operator retries or discards it.
 */
export interface DeadLetterRecord {
  mapping: string;
  key: string;
  op: string;
  payload: unknown;
  code: string;
  message: string;
  /** The contact's attempts so far; omitted: one more than the row has. */
  attempts?: number;
  /** IDENTIFIER_TAKEN: the contact of the same mapping that holds the identifier, and which identifier. */
  blockedBy?: Blocker | null;
}

/** The contact holding an identifier another contact wants: its key (same mapping), the field and the value wanted. */
export interface Blocker {
  key: string;
  field: IdentifierField;
  value: string;
}

/**
 * Upserts dead letters in one statement. A contact named twice keeps its last record: ON CONFLICT cannot
 * touch a row twice in one statement, and that error would fail the whole batch, again on every replay.
 * In the lock order dead letters come last, so callers run this after their outbox and state statements.
 */
export async function upsertDeadLetters(ctx: StoreContext, db: Trx | Db, records: readonly DeadLetterRecord[]): Promise<void> {
  if (records.length === 0) return;
  const unique = [...new Map(records.map((d) => [`${d.mapping}\u0000${d.key}`, d])).values()].sort(byContact);
  const x = unique.map((d) => ({
    m: d.mapping, k: d.key, o: d.op, p: d.payload ?? null, c: d.code, h: d.message, a: d.attempts ?? null,
    bk: d.blockedBy?.key ?? null, bf: d.blockedBy?.field ?? null, bv: d.blockedBy?.value ?? null,
  }));
  const t = ctx.t.dead;
  // The blocker is replaced too (cleared when the new reason is another): it must describe this reason.
  await sql`
    INSERT INTO ${t} AS d (mapping, source_key, op, payload, error_code, human_error, attempts, blocked_key, blocked_field, blocked_value)
    SELECT m, k, o, NULLIF(p, 'null'), c, h, COALESCE(a, 1), bk, bf, bv
    FROM jsonb_to_recordset(${jsonParam(x)}) AS x(m text, k text, o text, p jsonb, c text, h text, a int, bk text, bf text, bv text)
    ON CONFLICT (mapping, source_key) DO UPDATE
      SET op = EXCLUDED.op, payload = EXCLUDED.payload, error_code = EXCLUDED.error_code, human_error = EXCLUDED.human_error,
          attempts = CASE WHEN EXCLUDED.attempts > 1 THEN EXCLUDED.attempts ELSE d.attempts + 1 END, last_seen = now(),
          blocked_key = EXCLUDED.blocked_key, blocked_field = EXCLUDED.blocked_field, blocked_value = EXCLUDED.blocked_value`.execute(db);
}

/** A contact the answer freed: it was blocked by `by`, which no longer holds the identifier at Wooxy. */
export interface Released {
  mapping: string;
  key: string;
  by: string;
  field: string;
  value: string;
}

/**
 * Wooxy confirmed a call of each of `synced` (reconciliation, after writing their synced states in this
 * transaction): they are in sync, and their dead letters go — except a ROW_INVALID one written after the
 * confirmed payload was captured (the contact's state has a newer LSN than the call's entry): the row is
 * invalid now, and Wooxy holds an older version of it. A contact dead-lettered as blocked by one of
 * them (IDENTIFIER_TAKEN) whose synced state no longer holds the identifier (changed, cleared, or removed
 * from Wooxy) is released: its current desired state is queued (a newer pending entry is kept) and its dead
 * letter goes. Emails compare case-insensitively, as Wooxy compares them.
 *
 * One statement, so the dead letters it releases are the ones it queues. Outbox before dead letters (the
 * lock order): the final SELECT reads `queued` first. A dead letter rewritten meanwhile for another blocker
 * is kept (the DELETE re-checks the blocker on the row's newest version). Why it cannot miss a blocked
 * contact: the blocked contact's transaction held the blocker's state row FOR SHARE when it read it
 * (findHolders in identifiers.ts), so either it saw the synced state this transaction wrote, or this
 * transaction's synced write waited for its dead letter to commit, and this statement, started after that
 * write, sees it.
 */
export async function settleDeadLetters(ctx: StoreContext, trx: Trx, synced: ReadonlyArray<{ mapping: string; key: string; lsn: string }>): Promise<Released[]> {
  if (synced.length === 0) return [];
  const { t } = ctx;
  const keys = [...synced].sort(byContact);
  const { rows } = await sql<{ released: Released[] | null; cleared: number }>`
    WITH x AS (SELECT * FROM jsonb_to_recordset(${jsonParam(keys.map((k) => ({ m: k.mapping, k: k.key, l: k.lsn })))}) AS x(m text, k text, l pg_lsn)),
    released AS MATERIALIZED (
      SELECT d.mapping, d.source_key, d.blocked_key, d.blocked_field, d.blocked_value FROM ${t.dead} d
      JOIN x ON d.mapping = x.m AND d.blocked_key = x.k AND d.blocked_key IS NOT NULL
      LEFT JOIN ${t.state} h ON h.mapping = d.mapping AND h.source_key = d.blocked_key
      WHERE NOT COALESCE(CASE WHEN d.blocked_field = 'email' THEN lower(h.synced ->> 'email') = lower(d.blocked_value)
                              ELSE h.synced ->> d.blocked_field = d.blocked_value END, false)
    ),
    queued AS (
      INSERT INTO ${t.outbox} (mapping, source_key, state, payload, lsn)
      SELECT s.mapping, s.source_key, 'pending', s.desired, s.lsn FROM released r JOIN ${t.state} s ON s.mapping = r.mapping AND s.source_key = r.source_key
      ORDER BY s.mapping, s.source_key
      ON CONFLICT (mapping, source_key, state) DO NOTHING
      RETURNING 1
    ),
    gone AS (
      SELECT x.m AS mapping, x.k AS source_key, NULL::text AS blocked_key, NULL::text AS blocked_field, NULL::text AS blocked_value,
             COALESCE(s.lsn > x.l, false) AS newer
      FROM x LEFT JOIN ${t.state} s ON s.mapping = x.m AND s.source_key = x.k
      UNION ALL SELECT *, false FROM released
    ),
    cleared AS (
      DELETE FROM ${t.dead} d USING gone g
      WHERE d.mapping = g.mapping AND d.source_key = g.source_key
        AND CASE WHEN g.blocked_key IS NULL THEN NOT (g.newer AND d.error_code = 'ROW_INVALID')
                 ELSE d.blocked_key = g.blocked_key AND d.blocked_field = g.blocked_field AND d.blocked_value = g.blocked_value END
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM queued) AS queued, (SELECT count(*)::int FROM cleared) AS cleared,
           (SELECT jsonb_agg(jsonb_build_object('mapping', mapping, 'key', source_key, 'by', blocked_key, 'field', blocked_field, 'value', blocked_value)) FROM released) AS released`.execute(trx);
  return rows[0]?.released ?? [];
}

export interface DeadLetterFilter {
  mapping?: string;
  key?: string;
  code?: string;
}

export interface DeadLetter {
  mapping: string;
  key: string;
  op: string;
  code: string;
  message: string;
  attempts: number;
  firstSeen: string;
  lastSeen: string;
  payload: Record<string, unknown> | null;
  /** IDENTIFIER_TAKEN: the contact holding the identifier; the dead letter goes when it lets go of it. */
  blockedBy: Blocker | null;
}

function where(f: DeadLetterFilter): RawBuilder<unknown> {
  const conditions = [sql`true`];
  if (f.mapping !== undefined) conditions.push(sql`d.mapping = ${f.mapping}`);
  if (f.key !== undefined) conditions.push(sql`d.source_key = ${f.key}`);
  if (f.code !== undefined) conditions.push(sql`d.error_code = ${f.code}`);
  return sql.join(conditions, sql` AND `);
}

export async function listDeadLetters(ctx: StoreContext, filter: DeadLetterFilter = {}, limit = 1000): Promise<DeadLetter[]> {
  let q = ctx.db
    .selectFrom('dead_letters as d')
    .select(['d.mapping', 'd.source_key', 'd.op', 'd.error_code', 'd.human_error', 'd.attempts', 'd.first_seen', 'd.last_seen', 'd.payload', 'd.blocked_key', 'd.blocked_field', 'd.blocked_value'])
    .orderBy('d.last_seen', 'desc')
    .orderBy('d.mapping')
    .orderBy('d.source_key')
    .limit(limit);
  if (filter.mapping !== undefined) q = q.where('d.mapping', '=', filter.mapping);
  if (filter.key !== undefined) q = q.where('d.source_key', '=', filter.key);
  if (filter.code !== undefined) q = q.where('d.error_code', '=', filter.code);
  const rows = await q.execute();
  return rows.map((r) => ({
    mapping: r.mapping,
    key: r.source_key,
    op: r.op,
    code: r.error_code,
    message: r.human_error,
    attempts: r.attempts,
    firstSeen: new Date(r.first_seen).toISOString(),
    lastSeen: new Date(r.last_seen).toISOString(),
    payload: r.payload,
    blockedBy: r.blocked_key !== null && r.blocked_field !== null && r.blocked_value !== null ? { key: r.blocked_key, field: r.blocked_field, value: r.blocked_value } : null,
  }));
}

export interface RetryOutcome {
  /** Dead letters removed. */
  retried: number;
  /** Contacts put back in the outbox. The others had nothing to send: a newer change is pending already, or no state is left. */
  queued: number;
}

/**
 * Queues each matching contact's current desired state (contact_state.desired, at its LSN) as a pending
 * entry, then deletes the dead letters, in one transaction and in the lock order (outbox before dead
 * letters). Where a pending entry exists already it is newer and is kept.
 */
export async function retryDeadLetters(ctx: StoreContext, filter: DeadLetterFilter): Promise<RetryOutcome> {
  const { t } = ctx;
  return transaction(ctx, null, async (trx) => {
    const queued = await sql`
      INSERT INTO ${t.outbox} (mapping, source_key, state, payload, lsn)
      SELECT s.mapping, s.source_key, 'pending', s.desired, s.lsn
      FROM ${t.state} s JOIN ${t.dead} d ON d.mapping = s.mapping AND d.source_key = s.source_key
      WHERE ${where(filter)}
      ORDER BY s.mapping, s.source_key
      ON CONFLICT (mapping, source_key, state) DO NOTHING`.execute(trx);
    const picked = await sql`DELETE FROM ${t.dead} d WHERE ${where(filter)}`.execute(trx);
    return { retried: Number(picked.numAffectedRows ?? 0), queued: Number(queued.numAffectedRows ?? 0) };
  });
}

export async function discardDeadLetters(ctx: StoreContext, filter: DeadLetterFilter): Promise<number> {
  const r = await withRetries(() => sql`DELETE FROM ${ctx.t.dead} d WHERE ${where(filter)}`.execute(ctx.db));
  return Number(r.numAffectedRows ?? 0);
}

/** Dead letters by mapping and code, for the monitor's gauge. */
export async function countDeadLetters(ctx: StoreContext): Promise<Array<{ mapping: string; code: string; n: number }>> {
  const rows = await ctx.db
    .selectFrom('dead_letters')
    .select(['mapping', 'error_code as code', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy(['mapping', 'error_code'])
    .execute();
  return rows.map((r) => ({ mapping: r.mapping, code: r.code, n: Number(r.n) }));
}
