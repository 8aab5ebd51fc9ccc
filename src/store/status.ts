import { sql } from 'kysely';
import type { StoreContext } from './context.js';

/** Outbox entries by state (pending, inflight), for the monitor's gauge. */
export async function outboxDepth(ctx: StoreContext): Promise<Record<'pending' | 'inflight', number>> {
  const rows = await ctx.db
    .selectFrom('outbox')
    .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy('state')
    .execute();
  const depth = { pending: 0, inflight: 0 };
  for (const r of rows) depth[r.state] = Number(r.n);
  return depth;
}

/*
 * What `wooxy-cdc status` and /status read. Read-only, and cheap enough to run on every request of a monitoring
 * check: each statement reads an index, a small table (leader, mappings, events, removal_guard, snapshot_progress)
 * or the outbox and requests once. The caller runs the reads of the connector's tables in one READ ONLY
 * transaction, so the numbers are one picture. The slot and the publication are the source's (ctx.source: with
 * postgres.stateUrl another database, which that transaction cannot see), read beside it.
 */

/**
 * Runs the reads in one READ ONLY, REPEATABLE READ transaction, so they are one picture of the tables, each
 * statement bounded by `timeoutMs`: a monitoring check must end, even against a server that hangs.
 */
export async function readConsistently<T>(ctx: StoreContext, timeoutMs: number, fn: (ctx: StoreContext) => Promise<T>): Promise<T> {
  return ctx.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      await sql`SELECT set_config('statement_timeout', ${String(timeoutMs)}, true)`.execute(trx);
      return fn({ ...ctx, db: trx });
    });
}

/** Whether the state's database and the source answer at all (status says "down" rather than failing). */
export async function ping(ctx: StoreContext): Promise<{ state: string | null; source: string | null }> {
  const answer = (db: StoreContext['db']) =>
    sql`SELECT 1`.execute(db).then(
      () => null,
      (e: unknown) => (e instanceof Error ? e.message || String((e as { code?: string }).code ?? e) : String(e)),
    );
  const [state, source] = await Promise.all([answer(ctx.db), ctx.separate ? answer(ctx.source) : null]);
  return { state, source };
}

export interface SlotRow {
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  /** WAL not yet confirmed: pg_current_wal_lsn() − confirmed_flush_lsn. */
  lagBytes: number | null;
  /** WAL the server keeps for the slot: pg_current_wal_lsn() − restart_lsn. */
  retainedWalBytes: number | null;
  /** reserved, extended, unreserved, lost (lost: invalidated, it can no longer be read). */
  walStatus: string | null;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** The slot as the source's pg_replication_slots has it; null when it does not exist. */
export async function readSlot(ctx: StoreContext, slot: string): Promise<SlotRow | null> {
  const { rows } = await sql<{ active: boolean; active_pid: number | null; confirmed: string | null; restart: string | null; lag: string | null; retained: string | null; wal_status: string | null }>`
    SELECT active, active_pid, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart,
           pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag,
           pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained, wal_status
    FROM pg_replication_slots WHERE slot_name = ${slot}`.execute(ctx.source);
  const s = rows[0];
  if (!s) return null;
  return {
    active: s.active,
    activePid: s.active_pid,
    confirmedFlushLsn: s.confirmed,
    restartLsn: s.restart,
    lagBytes: num(s.lag),
    retainedWalBytes: num(s.retained),
    walStatus: s.wal_status,
  };
}

export async function publicationExists(ctx: StoreContext, publication: string): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = ${publication}) AS ok`.execute(ctx.source);
  return rows[0]?.ok === true;
}

/** The last LSN durable in the outbox for the slot (replication_state). */
export async function durableLsn(ctx: StoreContext, slot: string): Promise<string | null> {
  const r = await ctx.db.selectFrom('replication_state').select(sql<string>`durable_lsn::text`.as('lsn')).where('slot', '=', slot).executeTakeFirst();
  return r?.lsn ?? null;
}

/** The slot's current (or last) term of leadership: its epoch and when it began. */
export async function currentTerm(ctx: StoreContext, slot: string): Promise<{ epoch: string; electedAt: Date } | null> {
  const r = await ctx.db.selectFrom('leader').select(['epoch', 'elected_at']).where('slot', '=', slot).executeTakeFirst();
  return r ? { epoch: String(r.epoch), electedAt: r.elected_at } : null;
}

export interface OutboxSummary {
  pending: number;
  /** Pending and due now (the rest back off, or are parked by a removal hold). */
  due: number;
  inflight: number;
  oldestPendingAgeSeconds: number | null;
  /**
   * Age of the oldest pending entry that is durable (lsn ≤ the durable LSN) and waits for delivery, not for an
   * operator: the delivery lag in seconds. Removals parked by a hold are left out, since the hold is reported
   * as a problem of its own and they wait for a decision, whatever delivery does.
   */
  lagSeconds: number | null;
}

/** The outbox of the configured mappings (entries of others are orphans, reported apart). */
export async function outboxSummary(ctx: StoreContext, slot: string, configured: readonly string[]): Promise<OutboxSummary> {
  const { rows } = await sql<{ pending: number; due: number; inflight: number; oldest: number | null; lag: number | null }>`
    WITH durable AS (SELECT COALESCE((SELECT durable_lsn FROM ${ctx.t.repl} WHERE slot = ${slot}), '0/0'::pg_lsn) AS lsn)
    SELECT count(*) FILTER (WHERE o.state = 'pending')::int AS pending,
           count(*) FILTER (WHERE o.state = 'pending' AND o.next_attempt_at <= now())::int AS due,
           count(*) FILTER (WHERE o.state = 'inflight')::int AS inflight,
           EXTRACT(EPOCH FROM now() - min(o.enqueued_at) FILTER (WHERE o.state = 'pending'))::float8 AS oldest,
           EXTRACT(EPOCH FROM now() - min(o.enqueued_at) FILTER (
             WHERE o.state = 'pending' AND o.lsn <= durable.lsn AND o.next_attempt_at <> 'infinity'))::float8 AS lag
    FROM ${ctx.t.outbox} o, durable
    WHERE o.mapping = ANY(${[...configured]}::text[])`.execute(ctx.db);
  const r = rows[0];
  return { pending: r?.pending ?? 0, due: r?.due ?? 0, inflight: r?.inflight ?? 0, oldestPendingAgeSeconds: r?.oldest ?? null, lagSeconds: r?.lag ?? null };
}

export interface RequestSummary {
  unresolved: number;
  oldestUnresolvedAgeSeconds: number | null;
  /** Unresolved for longer than reconcile.warnAfterHours: Wooxy forgets a status after 7 days. */
  pastWarning: number;
}

export async function requestSummary(ctx: StoreContext, warnAfterHours: number): Promise<RequestSummary> {
  const { rows } = await sql<{ n: number; oldest: number | null; past: number }>`
    SELECT count(*)::int AS n, EXTRACT(EPOCH FROM now() - min(sent_at))::float8 AS oldest,
           count(*) FILTER (WHERE sent_at < now() - make_interval(secs => ${warnAfterHours * 3600}))::int AS past
    FROM ${ctx.t.requests} WHERE status = 'new'`.execute(ctx.db);
  return { unresolved: rows[0]?.n ?? 0, oldestUnresolvedAgeSeconds: rows[0]?.oldest ?? null, pastWarning: rows[0]?.past ?? 0 };
}

/** A mapping's mass-removal guard as status shows it: the hold, if any, and the operator's latest decision. */
export interface GuardStatusRow {
  mapping: string;
  heldSince: Date | null;
  heldCount: number;
  cause: string | null;
  lastDecision: { decision: 'approve' | 'discard'; contacts: number; decidedBy: string; decidedAt: Date } | null;
}

/** Mappings whose removals are held, or about which an operator decided. */
export async function guardStatuses(ctx: StoreContext): Promise<GuardStatusRow[]> {
  const { t } = ctx;
  const { rows } = await sql<{
    mapping: string;
    held_since: Date | null;
    held_count: number | null;
    cause: string | null;
    decision: 'approve' | 'discard' | null;
    contacts: number | null;
    decided_by: string | null;
    decided_at: Date | null;
  }>`
    SELECT m.mapping, g.held_since, g.held_count, g.cause, d.decision, d.contacts, d.decided_by, d.decided_at
    FROM (SELECT mapping FROM ${t.guard} WHERE held_since IS NOT NULL UNION SELECT mapping FROM ${t.decisions}) m
    LEFT JOIN ${t.guard} g ON g.mapping = m.mapping
    LEFT JOIN LATERAL (SELECT * FROM ${t.decisions} x WHERE x.mapping = m.mapping ORDER BY x.decided_at DESC, x.id DESC LIMIT 1) d ON true
    ORDER BY m.mapping LIMIT 100`.execute(ctx.db);
  return rows.map((r) => ({
    mapping: r.mapping,
    heldSince: r.held_since,
    heldCount: r.held_since !== null ? (r.held_count ?? 0) : 0,
    cause: r.held_since !== null ? r.cause : null,
    lastDecision: r.decision && r.decided_at ? { decision: r.decision, contacts: r.contacts ?? 0, decidedBy: r.decided_by ?? '', decidedAt: r.decided_at } : null,
  }));
}

export interface ProgressRow {
  mapping: string;
  cursor: string | null;
  rowsDone: number;
  rowsTotal: number | null;
  chunksDone: number;
  startedAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  /** Seconds since the last chunk was written, by the database's clock. */
  since: number;
}

export async function snapshotProgress(ctx: StoreContext): Promise<ProgressRow[]> {
  const { rows } = await sql<{
    mapping: string;
    cursor: string | null;
    rows_done: string;
    rows_total: string | null;
    chunks_done: number;
    started_at: Date;
    updated_at: Date;
    finished_at: Date | null;
    since: number;
  }>`
    SELECT mapping, cursor, rows_done, rows_total, chunks_done, started_at, updated_at, finished_at,
           EXTRACT(EPOCH FROM now() - updated_at)::float8 AS since
    FROM ${ctx.t.progress} ORDER BY mapping LIMIT 100`.execute(ctx.db);
  return rows.map((r) => ({
    mapping: r.mapping,
    cursor: r.cursor,
    rowsDone: Number(r.rows_done),
    rowsTotal: num(r.rows_total),
    chunksDone: r.chunks_done,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
    since: r.since,
  }));
}
