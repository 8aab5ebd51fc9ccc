import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../db/types.js';
import type { StoreContext } from './context.js';

/**
 * The mass-removal guard's statements (src/outbox/removal-guard.ts decides; the operator's decisions are in
 * removals.ts). The rules they keep:
 *
 * - A removal waiting to be sent is a pending entry whose payload is NULL (the contact must leave the list) of
 *   a contact Wooxy holds or may hold: contact_state.synced is set, or the entry carries maybe_ids. A remove
 *   that is half of a remove-then-add (an identifier cleared) has a payload, and is not one.
 * - A mapping is held while removal_guard.held_since is set. claimDue (delivery.ts) then takes none of the
 *   mapping's pending entries with a NULL payload above approved_lsn; its adds and updates go on.
 * - Held entries are parked: next_attempt_at = 'infinity', a value nothing but the guard writes, so a claim
 *   reading the outbox in due order never walks past a million held removals to find the adds behind them.
 *   Whatever ends a hold unparks them. Parking is for speed only; the claim's check is the rule.
 * - A hold changes (is set, lifted, approved, discarded) only under the writer turn (capture.ts): the stream
 *   and snapshot chunks judge the removals they queue in their own transaction, so removals and the hold
 *   they cause commit together, and no decision misses removals written beside it.
 * - An operator's decision covers the removals durable when it was made: approved_lsn becomes the slot's
 *   durable LSN. Anything queued later has a higher LSN and is judged afresh; a retry keeps its entry's LSN,
 *   so a decided removal that Wooxy failed is not held again.
 */

type Db = Kysely<Database>;

/** The waiting removals of a mapping above an LSN (and up to one), as the FROM … WHERE of a query (see the rule above). */
export function waiting(ctx: StoreContext, mapping: string, above: string, upTo?: string): RawBuilder<unknown> {
  const { t } = ctx;
  return sql`FROM ${t.outbox} o JOIN ${t.state} s ON s.mapping = o.mapping AND s.source_key = o.source_key
    WHERE o.mapping = ${mapping} AND o.state = 'pending' AND o.payload IS NULL AND o.lsn > ${above}::pg_lsn
      ${upTo === undefined ? sql`` : sql`AND o.lsn <= ${upTo}::pg_lsn`} AND (s.synced IS NOT NULL OR o.maybe_ids IS NOT NULL)`;
}

/** How long a count of a mapping's synced contacts stands in for a new one. */
const SYNCED_COUNT_TTL_S = 60;

export interface GuardRow {
  held: boolean;
  heldSince: Date | null;
  heldCount: number;
  cause: string | null;
  approvedLsn: string;
  /** The synced contacts counted less than a minute ago; null when a count is due. */
  syncedCount: number | null;
}

export async function readGuard(ctx: StoreContext, db: Db, mapping: string): Promise<GuardRow> {
  const { rows } = await sql<{ held_since: Date | null; held_count: number; cause: string | null; approved_lsn: string; synced: string | null }>`
    SELECT held_since, held_count, cause, approved_lsn::text AS approved_lsn,
           CASE WHEN counted_at > now() - make_interval(secs => ${SYNCED_COUNT_TTL_S}) THEN synced_count END AS synced
    FROM ${ctx.t.guard} WHERE mapping = ${mapping}`.execute(db);
  const r = rows[0];
  return {
    held: r?.held_since != null,
    heldSince: r?.held_since ?? null,
    heldCount: r?.held_count ?? 0,
    cause: r?.cause ?? null,
    approvedLsn: r?.approved_lsn ?? '0/0',
    syncedCount: r?.synced == null ? null : Number(r.synced),
  };
}

/**
 * The waiting removals above `above`, counted up to `limit` at most: the guard asks "more than N?", and the
 * answer then costs N index entries, whatever the backlog (outbox_removals holds removals only).
 */
export async function countWaiting(ctx: StoreContext, db: Db, mapping: string, above: string, opts: { limit?: number; upTo?: string } = {}): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM (SELECT 1 ${waiting(ctx, mapping, above, opts.upTo)} ${opts.limit === undefined ? sql`` : sql`LIMIT ${opts.limit}`}) w`.execute(db);
  return rows[0]?.n ?? 0;
}

/** The waiting removals above `above`, and how many of them are rows deleted at the source (the rest left the filter). */
export async function measureWaiting(ctx: StoreContext, db: Db, mapping: string, above: string): Promise<{ waiting: number; deleted: number }> {
  const { rows } = await sql<{ n: number; deleted: number }>`
    SELECT count(*)::int AS n, count(*) FILTER (WHERE s.row IS NULL)::int AS deleted ${waiting(ctx, mapping, above)}`.execute(db);
  return { waiting: rows[0]?.n ?? 0, deleted: rows[0]?.deleted ?? 0 };
}

/** Counts the mapping's synced contacts (a scan of its states) and keeps the count for a minute. */
export async function recountSynced(ctx: StoreContext, db: Db, mapping: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    WITH c AS (SELECT count(*) AS n FROM ${ctx.t.state} WHERE mapping = ${mapping} AND synced IS NOT NULL),
    kept AS (
      INSERT INTO ${ctx.t.guard} AS g (mapping, synced_count, counted_at) SELECT ${mapping}, n, now() FROM c
      ON CONFLICT (mapping) DO UPDATE SET synced_count = EXCLUDED.synced_count, counted_at = EXCLUDED.counted_at
    )
    SELECT n::text AS n FROM c`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/** Parks every removal entry of the mapping above `above`, or only those of `keys`. */
async function park(ctx: StoreContext, db: Db, mapping: string, above: string, keys?: readonly string[]): Promise<void> {
  await sql`
    UPDATE ${ctx.t.outbox} SET next_attempt_at = 'infinity'
    WHERE mapping = ${mapping} AND state = 'pending' AND payload IS NULL AND lsn > ${above}::pg_lsn AND next_attempt_at <> 'infinity'
      ${keys === undefined ? sql`` : sql`AND source_key = ANY(${[...keys].sort()}::text[])`}`.execute(db);
}

/** Holds the mapping's removals (under the writer turn; the caller found it not held). */
export async function setHold(ctx: StoreContext, db: Db, mapping: string, hold: { count: number; synced: number; cause: string; above: string }): Promise<void> {
  await park(ctx, db, mapping, hold.above);
  await sql`
    INSERT INTO ${ctx.t.guard} AS g (mapping, held_since, held_count, held_synced, cause)
    VALUES (${mapping}, now(), ${hold.count}, ${hold.synced}, ${hold.cause})
    ON CONFLICT (mapping) DO UPDATE SET held_since = now(), held_count = EXCLUDED.held_count, held_synced = EXCLUDED.held_synced,
      cause = EXCLUDED.cause, updated_at = now()`.execute(db);
}

/** Removals queued while the mapping is held wait with the others (the claim holds them either way; this keeps claims fast). */
export async function parkKeys(ctx: StoreContext, db: Db, mapping: string, above: string, keys: readonly string[] | 'all'): Promise<void> {
  await park(ctx, db, mapping, above, keys === 'all' ? undefined : keys);
}

/** Makes parked entries of the mapping due now; with `upTo`, only those at or below that LSN. */
export async function unpark(ctx: StoreContext, db: Db, mapping: string, upTo?: string): Promise<number> {
  const r = await sql`
    UPDATE ${ctx.t.outbox} SET next_attempt_at = now()
    WHERE state = 'pending' AND next_attempt_at = 'infinity' AND mapping = ${mapping} ${upTo === undefined ? sql`` : sql`AND lsn <= ${upTo}::pg_lsn`}`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

/** Ends a hold without a decision (nothing waits any more, or the guard was disabled): its removals are due now. */
export async function liftHold(ctx: StoreContext, db: Db, mapping: string): Promise<void> {
  await unpark(ctx, db, mapping);
  await sql`UPDATE ${ctx.t.guard} SET held_since = NULL, held_count = 0, updated_at = now() WHERE mapping = ${mapping}`.execute(db);
}

/** The held count as last measured (for status), outside the writer turn: a count changes no decision. */
export async function refreshHeldCount(ctx: StoreContext, mapping: string, count: number): Promise<void> {
  await sql`UPDATE ${ctx.t.guard} SET held_count = ${count}, updated_at = now()
    WHERE mapping = ${mapping} AND held_since IS NOT NULL AND held_count <> ${count}`.execute(ctx.db);
}

/**
 * Entries parked for a hold that has ended (an approval that covered only the durable ones, a mapping no
 * longer configured) are made due. One statement: it sees a hold and the entries it parked together, or neither.
 */
export async function unparkUnheld(ctx: StoreContext): Promise<number> {
  const { t } = ctx;
  const r = await sql`
    UPDATE ${t.outbox} o SET next_attempt_at = now()
    WHERE o.state = 'pending' AND o.next_attempt_at = 'infinity'
      AND NOT EXISTS (SELECT 1 FROM ${t.guard} g WHERE g.mapping = o.mapping AND g.held_since IS NOT NULL AND o.lsn > g.approved_lsn)`.execute(ctx.db);
  return Number(r.numAffectedRows ?? 0);
}
