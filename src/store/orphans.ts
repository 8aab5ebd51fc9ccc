import { sql } from 'kysely';
import type { StoreContext } from './context.js';
import { recordEvent } from './lifecycle.js';
import { transaction } from './tx.js';

/**
 * Orphans: what the connector keeps for a mapping that is not configured any more (removed from the file, or
 * renamed). Claims take only configured mappings' entries (delivery.ts), so an orphan never blocks delivery;
 * but its entries are never sent, its dead letters never settle, and its states stay. Only an operator can say
 * that they are not wanted: `orphans discard`.
 */
export interface OrphanRow {
  mapping: string;
  pending: number;
  inflight: number;
  /** Contact states: what the connector knows Wooxy holds for the mapping's contacts. */
  contacts: number;
  deadLetters: number;
  /**
   * The slot's current term recorded the mapping at its start (recordMapping, or a stop): the leader of that
   * term runs it, so the configuration it runs differs from the one the caller passed.
   */
  recordedThisTerm: boolean;
}

/**
 * Every mapping name the connector's tables know that is not in `configured`. The names are read with one
 * index probe per distinct name (a skip scan of each primary key), never by reading the tables.
 */
export async function listOrphans(ctx: StoreContext, configured: readonly string[], slot: string): Promise<OrphanRow[]> {
  const { t } = ctx;
  const mappings = sql.id(ctx.schema, 'mappings');
  const distinct = (table: typeof t.outbox) => sql`
    SELECT m FROM (WITH RECURSIVE n(m) AS (
      SELECT min(mapping) FROM ${table}
      UNION ALL SELECT (SELECT min(mapping) FROM ${table} WHERE mapping > n.m) FROM n WHERE n.m IS NOT NULL
    ) SELECT m FROM n) x WHERE m IS NOT NULL`;
  const { rows } = await sql<{ mapping: string; pending: number; inflight: number; contacts: number; dead: number; this_term: boolean }>`
    WITH names AS (
      ${distinct(t.outbox)} UNION ${distinct(t.state)} UNION ${distinct(t.dead)}
      UNION SELECT name FROM ${mappings} UNION SELECT mapping FROM ${t.guard} UNION SELECT mapping FROM ${t.progress}
    )
    SELECT n.m AS mapping,
           (SELECT count(*) FROM ${t.outbox} WHERE mapping = n.m AND state = 'pending')::int AS pending,
           (SELECT count(*) FROM ${t.outbox} WHERE mapping = n.m AND state = 'inflight')::int AS inflight,
           (SELECT count(*) FROM ${t.state} WHERE mapping = n.m)::int AS contacts,
           (SELECT count(*) FROM ${t.dead} WHERE mapping = n.m)::int AS dead,
           EXISTS (SELECT 1 FROM ${mappings} r JOIN ${t.leader} l ON l.slot = ${slot} WHERE r.name = n.m AND r.updated_at >= l.elected_at) AS this_term
    FROM names n(m) WHERE n.m <> ALL(${[...configured]}::text[]) ORDER BY n.m`.execute(ctx.db);
  return rows.map((r) => ({ mapping: r.mapping, pending: r.pending, inflight: r.inflight, contacts: r.contacts, deadLetters: r.dead, recordedThisTerm: r.this_term }));
}

export interface DiscardedOrphan {
  pending: number;
  inflight: number;
  contacts: number;
  deadLetters: number;
}

/**
 * Forgets a mapping that is not configured: its outbox entries, contact states, dead letters, removal guard,
 * snapshot progress and mapping record go, in one transaction; its contacts stay in Wooxy as they are (nothing
 * is sent). The history (pruned by age) and the removal decisions are records of what was done, and stay.
 * A request of the mapping still unresolved finds no entry and no state when it resolves, so it changes
 * nothing. Tables are written in the lock order (states, outbox, guard, dead letters); the rest is the
 * mapping's alone.
 */
export async function discardOrphan(ctx: StoreContext, mapping: string, decidedBy: string): Promise<DiscardedOrphan> {
  const { t } = ctx;
  return transaction(ctx, null, async (trx) => {
    const states = await sql`DELETE FROM ${t.state} WHERE mapping = ${mapping}`.execute(trx);
    const { rows: entries } = await sql<{ state: string; n: number }>`
      WITH gone AS (DELETE FROM ${t.outbox} WHERE mapping = ${mapping} RETURNING state)
      SELECT state, count(*)::int AS n FROM gone GROUP BY state`.execute(trx);
    await sql`DELETE FROM ${t.guard} WHERE mapping = ${mapping}`.execute(trx);
    const dead = await sql`DELETE FROM ${t.dead} WHERE mapping = ${mapping}`.execute(trx);
    await sql`DELETE FROM ${t.progress} WHERE mapping = ${mapping}`.execute(trx);
    await sql`DELETE FROM ${sql.id(ctx.schema, 'mappings')} WHERE name = ${mapping}`.execute(trx);
    const out: DiscardedOrphan = {
      pending: entries.find((e) => e.state === 'pending')?.n ?? 0,
      inflight: entries.find((e) => e.state === 'inflight')?.n ?? 0,
      contacts: Number(states.numAffectedRows ?? 0),
      deadLetters: Number(dead.numAffectedRows ?? 0),
    };
    await recordEvent(ctx, trx, {
      level: 'info',
      code: 'ORPHAN_DISCARDED',
      mapping,
      message: `discarded by ${decidedBy}: ${out.pending} pending and ${out.inflight} in-flight entries, ${out.contacts} contact state(s), ${out.deadLetters} dead letter(s); its contacts stay in Wooxy as they are`,
    });
    return out;
  });
}
