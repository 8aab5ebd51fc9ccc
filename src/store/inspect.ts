import { sql } from 'kysely';
import type { ContactPayload, Row } from '../mapping/mapper.js';
import type { StoreContext } from './context.js';
import { listDeadLetters, type DeadLetter } from './dead-letters.js';

/**
 * What `wooxy-cdc inspect`, the dry runs and `plan` read of the connector's tables. Read-only, every one: the
 * commands run beside a live connector, or with none, and must change nothing. They may also meet a schema
 * that was never migrated (the connector never ran) or an older one (no history table): `schemaTables` says
 * which tables exist, and the callers read only those.
 */

export interface SchemaTables {
  /** The connector's tables exist (contact_state and the rest of the first migrations). */
  migrated: boolean;
  /** The history table exists (migration 0009). */
  history: boolean;
  /** The mappings table exists (migration 0006). */
  mappings: boolean;
}

export async function schemaTables(ctx: StoreContext): Promise<SchemaTables> {
  const name = (t: string) => `${JSON.stringify(ctx.schema)}.${t}`;
  const { rows } = await sql<SchemaTables>`
    SELECT to_regclass(${name('contact_state')}) IS NOT NULL AS migrated, to_regclass(${name('history')}) IS NOT NULL AS history,
           to_regclass(${name('mappings')}) IS NOT NULL AS mappings`.execute(ctx.db);
  return rows[0] ?? { migrated: false, history: false, mappings: false };
}

/** What the connector holds of one contact: its state, its outbox entries and its dead letter. */
export interface ContactRecord {
  state: {
    /** The mapped columns last seen (null: the row is gone). */
    row: Row | null;
    /** The payload the row implied when last seen (null: not in the list). */
    desired: ContactPayload | null;
    /** What Wooxy holds as far as the connector knows (null: nothing). */
    synced: ContactPayload | null;
    lsn: string;
    updatedAt: string;
  } | null;
  pending: OutboxEntry | null;
  inflight: (OutboxEntry & { request: { status: string; sentAt: string; checkedAt: string | null } | null }) | null;
  deadLetter: DeadLetter | null;
}

export interface OutboxEntry {
  /** The payload to send (null: a removal). */
  payload: ContactPayload | null;
  attempts: number;
  enqueuedAt: string;
  nextAttemptAt: string;
  lastError: string | null;
  /** What the last answer implies for the next call: add, update, replace. */
  opHint: string | null;
  /** In flight: the request and its operation; pending: the call being made now, if any (a claim's batch). */
  requestId: string | null;
  sentOp: string | null;
  sentAt: string | null;
  claimedBy: string | null;
  claimedUntil: string | null;
  /** Identifiers Wooxy may hold from a call whose answer is not recorded; a remove that may have happened. */
  maybeIds: Record<string, string> | null;
  maybeRemoved: boolean;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export async function readContact(ctx: StoreContext, mapping: string, key: string): Promise<ContactRecord> {
  const [state, entries, dead] = await Promise.all([
    ctx.db.selectFrom('contact_state').select(['row', 'desired', 'synced', 'lsn', 'updated_at']).where('mapping', '=', mapping).where('source_key', '=', key).executeTakeFirst(),
    ctx.db
      .selectFrom('outbox as o')
      .leftJoin('requests as r', 'r.request_id', 'o.request_id')
      .select([
        'o.state', 'o.payload', 'o.attempts', 'o.enqueued_at', 'o.next_attempt_at', 'o.last_error', 'o.op_hint', 'o.request_id', 'o.sent_op', 'o.sent_at',
        'o.claimed_by', 'o.claimed_until', 'o.maybe_ids', 'o.maybe_removed', 'r.status', 'r.sent_at as request_sent_at', 'r.checked_at',
      ])
      .where('o.mapping', '=', mapping)
      .where('o.source_key', '=', key)
      .execute(),
    listDeadLetters(ctx, { mapping, key }, 1),
  ]);
  const entry = (state: 'pending' | 'inflight'): OutboxEntry | null => {
    const e = entries.find((x) => x.state === state);
    if (!e) return null;
    return {
      payload: e.payload,
      attempts: e.attempts,
      enqueuedAt: iso(e.enqueued_at)!,
      nextAttemptAt: iso(e.next_attempt_at)!,
      lastError: e.last_error,
      opHint: e.op_hint,
      requestId: e.request_id,
      sentOp: e.sent_op,
      sentAt: iso(e.sent_at),
      claimedBy: e.claimed_by,
      claimedUntil: iso(e.claimed_until),
      maybeIds: e.maybe_ids as Record<string, string> | null,
      maybeRemoved: e.maybe_removed,
    };
  };
  const flying = entries.find((x) => x.state === 'inflight');
  const inflight = entry('inflight');
  return {
    state: state ? { row: state.row, desired: state.desired, synced: state.synced, lsn: state.lsn, updatedAt: iso(state.updated_at)! } : null,
    pending: entry('pending'),
    inflight: inflight && {
      ...inflight,
      request: flying?.status ? { status: flying.status, sentAt: iso(flying.request_sent_at)!, checkedAt: iso(flying.checked_at) } : null,
    },
    deadLetter: dead[0] ?? null,
  };
}

/** An email or a phone number to look a contact up by. */
export type Lookup = { field: 'email'; value: string } | { field: 'phoneNumber'; value: string };

/**
 * The keys of a mapping's contacts that name this email (case-insensitively, as Wooxy compares emails) or
 * phone number in the payload the row implies (desired), in what Wooxy holds (synced), or in one of the
 * mapped `columns` the field is read from (a row the filter keeps out has no desired payload, but its columns
 * are stored). contact_state has no index on these (it would make every synced rewrite a non-HOT update):
 * this is one scan of the mapping's states, for one operator's question.
 */
export async function findContactKeys(ctx: StoreContext, mapping: string, lookup: Lookup, columns: readonly string[], limit = 20): Promise<string[]> {
  const match = (expr: ReturnType<typeof sql>) => (lookup.field === 'email' ? sql`lower(${expr}) = lower(${lookup.value})` : sql`${expr} = ${lookup.value}`);
  const conditions = [
    match(sql`desired ->> ${lookup.field}`),
    match(sql`synced ->> ${lookup.field}`),
    ...columns.map((c) => match(sql`row ->> ${c}`)),
  ];
  const { rows } = await sql<{ source_key: string }>`
    SELECT source_key FROM ${ctx.t.state} WHERE mapping = ${mapping} AND (${sql.join(conditions, sql` OR `)})
    ORDER BY source_key LIMIT ${limit}`.execute(ctx.db);
  return rows.map((r) => r.source_key);
}

/**
 * The keys whose history names this identifier: a contact deleted at the source and removed from Wooxy has
 * no state left, only its history. One scan of the mapping's history; inspect asks only when no state matched.
 */
export async function findKeysInHistory(ctx: StoreContext, mapping: string, lookup: Lookup, limit = 20): Promise<string[]> {
  const expr = sql`ids ->> ${lookup.field}`;
  const cond = lookup.field === 'email' ? sql`lower(${expr}) = lower(${lookup.value})` : sql`${expr} = ${lookup.value}`;
  const { rows } = await sql<{ source_key: string }>`
    SELECT DISTINCT source_key FROM ${ctx.t.history} WHERE mapping = ${mapping} AND ${cond} ORDER BY source_key LIMIT ${limit}`.execute(ctx.db);
  return rows.map((r) => r.source_key);
}

/** The stored state of some contacts of a mapping, as the dry runs compare a chunk of rows with it. */
export interface StoredState {
  desired: ContactPayload | null;
  synced: ContactPayload | null;
  /** A ROW_INVALID dead letter is recorded: the next valid version of the row is queued even if unchanged. */
  invalid: boolean;
}

export async function readStates(ctx: StoreContext, mapping: string, keys: readonly string[]): Promise<Map<string, StoredState>> {
  if (keys.length === 0) return new Map();
  const { rows } = await sql<{ source_key: string; desired: ContactPayload | null; synced: ContactPayload | null; invalid: boolean }>`
    SELECT s.source_key, s.desired, s.synced,
           EXISTS (SELECT 1 FROM ${ctx.t.dead} d WHERE d.mapping = s.mapping AND d.source_key = s.source_key AND d.error_code = 'ROW_INVALID') AS invalid
    FROM ${ctx.t.state} s WHERE s.mapping = ${mapping} AND s.source_key = ANY(${[...keys]}::text[])`.execute(ctx.db);
  return new Map(rows.map((r) => [r.source_key, { desired: r.desired, synced: r.synced, invalid: r.invalid }]));
}

/** A page of a mapping's contact states after `after` (text order): the removals' sweep of the dry runs. */
export async function listStates(ctx: StoreContext, mapping: string, after: string | null, limit: number): Promise<Array<StoredState & { key: string }>> {
  const { rows } = await sql<{ source_key: string; desired: ContactPayload | null; synced: ContactPayload | null }>`
    SELECT source_key, desired, synced FROM ${ctx.t.state}
    WHERE mapping = ${mapping} ${after === null ? sql`` : sql`AND source_key > ${after}`}
    ORDER BY source_key LIMIT ${limit}`.execute(ctx.db);
  return rows.map((r) => ({ key: r.source_key, desired: r.desired, synced: r.synced, invalid: false }));
}

/** The list a mapping last synced to (mappings.list_id), when the connector has run it. */
export async function recordedListId(ctx: StoreContext, mapping: string): Promise<string | null> {
  const r = await ctx.db.selectFrom('mappings').select('list_id').where('name', '=', mapping).executeTakeFirst();
  return r?.list_id ?? null;
}

/** How many of a mapping's contacts Wooxy holds as far as the connector knows: what the mass-removal guard weighs removals against. */
export async function countSynced(ctx: StoreContext, mapping: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM ${ctx.t.state} WHERE mapping = ${mapping} AND synced IS NOT NULL`.execute(ctx.db);
  return Number(rows[0]?.n ?? 0);
}
