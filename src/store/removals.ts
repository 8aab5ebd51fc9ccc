import { sql } from 'kysely';
import type { Identifiers } from '../delivery/plan.js';
import { readDurableLsn, takeWriterTurn } from './capture.js';
import type { StoreContext } from './context.js';
import { collectStates } from './delivery.js';
import { countWaiting, readGuard, unpark, waiting, type GuardRow } from './guard.js';
import { transaction, type Trx } from './tx.js';

/**
 * The operator's side of the mass-removal guard (the rules are in guard.ts): what a hold holds, and the two
 * ways to end it. Both run under the writer turn, so no removal is written while they decide, and both
 * cover the removals durable at that moment: approved_lsn becomes the slot's durable LSN, and whatever is
 * queued afterwards is judged afresh. Every decision is recorded (who, when, how many, the hold it ended).
 */

export interface HoldSummary {
  mapping: string;
  held: boolean;
  heldSince: string | null;
  /** The removals held, as last counted. */
  contacts: number;
  /** The synced contacts they were weighed against when the hold began. */
  synced: number;
  cause: string | null;
}

export interface HeldRemoval {
  key: string;
  /** The identifiers Wooxy knows the contact by (what the remove would name). */
  identifiers: Identifiers;
  /** deleted: the row is gone at the source (DELETE, TRUNCATE); filtered: it no longer matches the mapping's filter. */
  source: 'deleted' | 'filtered';
}

export async function holdSummary(ctx: StoreContext, mapping: string): Promise<HoldSummary> {
  const { rows } = await sql<{ held_since: Date | null; held_count: number; held_synced: string; cause: string | null }>`
    SELECT held_since, held_count, held_synced, cause FROM ${ctx.t.guard} WHERE mapping = ${mapping}`.execute(ctx.db);
  const r = rows[0];
  return {
    mapping,
    held: r?.held_since != null,
    heldSince: r?.held_since ? new Date(r.held_since).toISOString() : null,
    contacts: r?.held_since ? r.held_count : 0,
    synced: r?.held_since ? Number(r.held_synced) : 0,
    cause: r?.held_since ? r.cause : null,
  };
}

/** The removals a hold holds, by key, at most `limit`. Empty when the mapping is not held. */
export async function listHeldRemovals(ctx: StoreContext, mapping: string, limit: number): Promise<HeldRemoval[]> {
  const g = await readGuard(ctx, ctx.db, mapping);
  if (!g.held) return [];
  const ids = (col: string) =>
    sql`jsonb_strip_nulls(jsonb_build_object('userId', NULLIF(${sql.ref(col)}->>'userId', ''), 'email', NULLIF(${sql.ref(col)}->>'email', ''),
      'phoneNumber', NULLIF(${sql.ref(col)}->>'phoneNumber', '')))`;
  const { rows } = await sql<{ source_key: string; ids: Identifiers; deleted: boolean }>`
    SELECT o.source_key, CASE WHEN s.synced IS NOT NULL THEN ${ids('s.synced')} ELSE ${ids('o.maybe_ids')} END AS ids, s.row IS NULL AS deleted
    ${waiting(ctx, mapping, g.approvedLsn)}
    ORDER BY o.source_key LIMIT ${limit}`.execute(ctx.db);
  return rows.map((r) => ({ key: r.source_key, identifiers: r.ids, source: r.deleted ? 'deleted' : 'filtered' }));
}

export interface DecisionInput {
  /** The connector's slot: a decision covers the removals durable for it. */
  slot: string;
  mapping: string;
  /** Who decided ("user@host"), for the record. */
  decidedBy: string;
}

export interface DecisionOutcome {
  /** False: the mapping was not held, and nothing changed. */
  held: boolean;
  /** The held removals the decision covered. */
  contacts: number;
  /** Removals queued but not yet durable when it was made: not covered, they are judged afresh. */
  later: number;
}

/** Ends the hold and records the decision; the guard row is written after the outbox rows (the lock order). */
async function decide(ctx: StoreContext, trx: Trx, input: DecisionInput, hold: GuardRow, decision: 'approve' | 'discard', contacts: number, upTo: string): Promise<void> {
  const { t } = ctx;
  await sql`UPDATE ${t.guard} SET approved_lsn = GREATEST(approved_lsn, ${upTo}::pg_lsn), held_since = NULL, held_count = 0, updated_at = now()
    WHERE mapping = ${input.mapping}`.execute(trx);
  await sql`INSERT INTO ${t.decisions} (mapping, decision, contacts, held_since, cause, decided_by)
    VALUES (${input.mapping}, ${decision}, ${contacts}, ${hold.heldSince}, ${hold.cause}, ${input.decidedBy})`.execute(trx);
}

/**
 * Approve: the held removals are released (made due, and above approved_lsn no more), and the guard will not
 * hold them again. The running connector sends them.
 */
export async function approveRemovals(ctx: StoreContext, input: DecisionInput): Promise<DecisionOutcome> {
  return transaction(ctx, null, async (trx) => {
    await takeWriterTurn(ctx, trx);
    const g = await readGuard(ctx, trx, input.mapping);
    if (!g.held) return { held: false, contacts: 0, later: 0 };
    const upTo = await readDurableLsn(ctx, input.slot, trx);
    const contacts = await countWaiting(ctx, trx, input.mapping, g.approvedLsn, { upTo });
    await unpark(ctx, trx, input.mapping, upTo);
    await decide(ctx, trx, input, g, 'approve', contacts, upTo);
    return { held: true, contacts, later: await countWaiting(ctx, trx, input.mapping, upTo) };
  });
}

/**
 * Discard: the held removals are forgotten. Their outbox entries go, and their contacts stay in Wooxy as they
 * are: `synced` is cleared, so the connector no longer counts them as its contacts and nothing (a later
 * TRUNCATE, a retry) queues their removal again; states with nothing left to say are collected after the
 * commit. A contact with a call in flight at that moment is the exception: when the call succeeds, `synced`
 * records it again.
 */
export async function discardRemovals(ctx: StoreContext, input: DecisionInput): Promise<DecisionOutcome> {
  const { t } = ctx;
  const done = await transaction(ctx, null, async (trx) => {
    await takeWriterTurn(ctx, trx);
    const g = await readGuard(ctx, trx, input.mapping);
    if (!g.held) return { held: false, contacts: 0, later: 0, keys: [] as string[] };
    const upTo = await readDurableLsn(ctx, input.slot, trx);
    const contacts = await countWaiting(ctx, trx, input.mapping, g.approvedLsn, { upTo });
    // Every removal entry the hold covers, the no-op ones too (contacts Wooxy never had): they would be dropped unsent anyway.
    const { rows } = await sql<{ source_key: string }>`
      SELECT source_key FROM ${t.outbox} WHERE mapping = ${input.mapping} AND state = 'pending' AND payload IS NULL
        AND lsn > ${g.approvedLsn}::pg_lsn AND lsn <= ${upTo}::pg_lsn ORDER BY source_key`.execute(trx);
    const keys = rows.map((r) => r.source_key);
    // States first, then the outbox: the lock order.
    await sql`UPDATE ${t.state} SET synced = NULL, updated_at = now() WHERE mapping = ${input.mapping} AND source_key = ANY(${keys}::text[]) AND synced IS NOT NULL`.execute(trx);
    await sql`
      DELETE FROM ${t.outbox} WHERE mapping = ${input.mapping} AND state = 'pending' AND payload IS NULL AND source_key = ANY(${keys}::text[])
        AND lsn > ${g.approvedLsn}::pg_lsn AND lsn <= ${upTo}::pg_lsn`.execute(trx);
    await decide(ctx, trx, input, g, 'discard', contacts, upTo);
    return { held: true, contacts, later: await countWaiting(ctx, trx, input.mapping, upTo), keys };
  });
  await collectStates(
    ctx,
    done.keys.map((key) => ({ mapping: input.mapping, key })),
  );
  return { held: done.held, contacts: done.contacts, later: done.later };
}

export interface Decision {
  mapping: string;
  decision: 'approve' | 'discard';
  contacts: number;
  heldSince: string | null;
  cause: string | null;
  decidedBy: string;
  decidedAt: string;
}

/** The latest decisions about a mapping's removals, newest first. */
export async function recentDecisions(ctx: StoreContext, mapping: string, limit = 5): Promise<Decision[]> {
  const { rows } = await sql<{ decision: 'approve' | 'discard'; contacts: number; held_since: Date | null; cause: string | null; decided_by: string; decided_at: Date }>`
    SELECT decision, contacts, held_since, cause, decided_by, decided_at FROM ${ctx.t.decisions}
    WHERE mapping = ${mapping} ORDER BY decided_at DESC, id DESC LIMIT ${limit}`.execute(ctx.db);
  return rows.map((r) => ({
    mapping,
    decision: r.decision,
    contacts: r.contacts,
    heldSince: r.held_since ? new Date(r.held_since).toISOString() : null,
    cause: r.cause,
    decidedBy: r.decided_by,
    decidedAt: new Date(r.decided_at).toISOString(),
  }));
}
