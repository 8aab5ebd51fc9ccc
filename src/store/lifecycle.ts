import { sql } from 'kysely';
import type { StoreContext } from './context.js';
import { ProgressStore } from './progress.js';
import { withRetries } from './retry.js';
import { transaction, type Fence, type Trx } from './tx.js';

/**
 * The mappings' and the source's lifecycle, as the connector remembers it across restarts: each mapping's
 * definition (fingerprinted), list and table, where and why it stopped, and the events operators need to
 * understand a gap (a slot lost, a mapping stopped, a reconciliation asked for).
 */
export interface MappingRecord {
  name: string;
  fingerprint: string;
  definition: Record<string, unknown>;
  listId: string;
  tableOid: number | null;
  /** Each mapped column's attnum and type oid when the mapping last ran (null before migration 0011). */
  columns: Record<string, { attnum: number; type: number }> | null;
  stop: { code: string; reason: string; lsn: string | null; at: Date } | null;
}

export async function loadMappingRecords(ctx: StoreContext): Promise<Map<string, MappingRecord>> {
  const rows = await ctx.db.selectFrom('mappings').selectAll().execute();
  return new Map(
    rows.map((r) => [
      r.name,
      {
        name: r.name,
        fingerprint: r.fingerprint,
        definition: r.definition,
        listId: r.list_id,
        tableOid: r.table_oid === null ? null : Number(r.table_oid),
        columns: r.columns,
        stop: r.stopped_code ? { code: r.stopped_code, reason: r.stopped_reason ?? '', lsn: r.stopped_lsn, at: r.stopped_at ?? new Date(0) } : null,
      },
    ]),
  );
}

/** Records what a mapping is now (its definition, list, table), leaving a recorded stop as it is. */
export async function recordMapping(
  ctx: StoreContext,
  trx: Trx,
  m: { name: string; fingerprint: string; definition: unknown; listId: string; tableOid: number | null; columns: unknown },
): Promise<void> {
  await sql`
    INSERT INTO ${sql.id(ctx.schema, 'mappings')} AS m (name, fingerprint, definition, list_id, table_oid, columns)
    VALUES (${m.name}, ${m.fingerprint}, ${JSON.stringify(m.definition)}::jsonb, ${m.listId}, ${m.tableOid}, ${m.columns === null ? null : JSON.stringify(m.columns)}::jsonb)
    ON CONFLICT (name) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, definition = EXCLUDED.definition, list_id = EXCLUDED.list_id,
      table_oid = EXCLUDED.table_oid, columns = EXCLUDED.columns, updated_at = now()`.execute(trx);
}

/** Remembers that a mapping stopped, where and why; a restart reads it (loadMappingRecords). The first stop's position is kept. */
export async function recordStop(ctx: StoreContext, fence: Fence | null, stop: { mapping: string; code: string; reason: string; lsn: string | null }): Promise<void> {
  await transaction(ctx, fence, async (trx) => {
    await sql`
      UPDATE ${sql.id(ctx.schema, 'mappings')} SET stopped_code = ${stop.code}, stopped_reason = ${stop.reason},
        stopped_lsn = COALESCE(stopped_lsn, ${stop.lsn}::pg_lsn), stopped_at = COALESCE(stopped_at, now()), updated_at = now()
      WHERE name = ${stop.mapping}`.execute(trx);
    await recordEvent(ctx, trx, { level: 'error', code: stop.code, mapping: stop.mapping, message: stop.reason });
  });
}

/**
 * A mapping starts again after a stop: the stop is forgotten and a reconciliation of the mapping asked for,
 * together, so a crash in between cannot forget the gap.
 */
export async function resumeMapping(ctx: StoreContext, trx: Trx, mapping: string, reason: string): Promise<void> {
  await sql`
    UPDATE ${sql.id(ctx.schema, 'mappings')} SET stopped_code = NULL, stopped_reason = NULL, stopped_lsn = NULL, stopped_at = NULL, updated_at = now()
    WHERE name = ${mapping}`.execute(trx);
  await requestReconcile(ctx, trx, mapping, reason);
}

/** Asks for a reconciling snapshot of a mapping (it starts over from the first key); the snapshot service runs it. */
export async function requestReconcile(ctx: StoreContext, trx: Trx, mapping: string, reason: string): Promise<void> {
  await new ProgressStore(ctx).begin(mapping, null, { reconcile: true, reason }, trx);
  await recordEvent(ctx, trx, { level: 'info', code: 'RECONCILE_REQUESTED', mapping, message: reason });
}

/**
 * The contacts of a mapping go to another list: what the old list holds is no longer what Wooxy holds for
 * this mapping, so `synced` and the marks of unrecorded calls are cleared, and calls in flight to the old list
 * come back to pending (their answers, when they come, no longer apply). The old list is left as it is.
 */
export async function switchList(ctx: StoreContext, trx: Trx, mapping: string): Promise<void> {
  const { t } = ctx;
  await sql`UPDATE ${t.state} SET synced = NULL, updated_at = now() WHERE mapping = ${mapping} AND synced IS NOT NULL`.execute(trx);
  await sql`
    WITH gone AS (
      DELETE FROM ${t.outbox} WHERE mapping = ${mapping} AND state = 'inflight' RETURNING source_key, payload, lsn
    )
    INSERT INTO ${t.outbox} AS o (mapping, source_key, state, payload, lsn)
    SELECT ${mapping}, source_key, 'pending', payload, lsn FROM gone ORDER BY source_key
    ON CONFLICT (mapping, source_key, state) DO NOTHING`.execute(trx);
  await sql`UPDATE ${t.outbox} SET maybe_ids = NULL, maybe_removed = false, op_hint = NULL WHERE mapping = ${mapping} AND state = 'pending'`.execute(trx);
  // Every contact that belongs in the list is sent to the new one (an add: nothing is known of it there).
  await sql`
    INSERT INTO ${t.outbox} AS o (mapping, source_key, state, payload, lsn)
    SELECT mapping, source_key, 'pending', desired, lsn FROM ${t.state} WHERE mapping = ${mapping} AND desired IS NOT NULL ORDER BY source_key
    ON CONFLICT (mapping, source_key, state) DO NOTHING`.execute(trx);
}

/** Contacts the connector keeps state for, per mapping (for "re-syncing N contacts"). */
export async function countContacts(ctx: StoreContext, mapping: string): Promise<number> {
  const r = await ctx.db
    .selectFrom('contact_state')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('mapping', '=', mapping)
    .where((eb) => eb.or([eb('desired', 'is not', null), eb('synced', 'is not', null)]))
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

export interface EventRecord {
  level: 'info' | 'warn' | 'error';
  code: string;
  mapping: string | null;
  message: string;
}

/** One line of the lifecycle history; the newest are kept (see pruneEvents). */
export async function recordEvent(ctx: StoreContext, db: Trx | StoreContext['db'], e: EventRecord): Promise<void> {
  await sql`INSERT INTO ${sql.id(ctx.schema, 'events')} (level, code, mapping, message) VALUES (${e.level}, ${e.code}, ${e.mapping}, ${e.message})`.execute(db);
}

export async function recentEvents(ctx: StoreContext, limit = 20): Promise<Array<EventRecord & { at: Date }>> {
  const rows = await ctx.db.selectFrom('events').select(['at', 'level', 'code', 'mapping', 'message']).orderBy('id', 'desc').limit(limit).execute();
  return rows.map((r) => ({ at: r.at, level: r.level as EventRecord['level'], code: r.code, mapping: r.mapping, message: r.message }));
}

/** Keeps the newest `keep` events. */
export async function pruneEvents(ctx: StoreContext, keep = 1_000): Promise<void> {
  await withRetries(() =>
    sql`DELETE FROM ${sql.id(ctx.schema, 'events')} WHERE id < (SELECT min(id) FROM (SELECT id FROM ${sql.id(ctx.schema, 'events')} ORDER BY id DESC LIMIT ${keep}) k)`.execute(ctx.db),
  );
}

/** Whether this slot has streamed before: a durable position recorded, or contacts known. */
export async function hasHistory(ctx: StoreContext, slot: string): Promise<{ durableLsn: string | null; contacts: boolean }> {
  const { rows } = await sql<{ lsn: string | null; contacts: boolean }>`
    SELECT (SELECT durable_lsn::text FROM ${ctx.t.repl} WHERE slot = ${slot}) AS lsn,
           EXISTS (SELECT 1 FROM ${ctx.t.state}) AS contacts`.execute(ctx.db);
  return { durableLsn: rows[0]?.lsn ?? null, contacts: rows[0]?.contacts ?? false };
}
