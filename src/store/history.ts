import { sql, type RawBuilder } from 'kysely';
import type { StoreContext } from './context.js';
import { deleteInBatches, type BatchedDeleteOptions, type Fence } from './tx.js';

/**
 * The contacts' request history (migrations/0009_history.ts): what each request meant for each contact, kept
 * `history.keepDays` for `wooxy-cdc inspect`, long after Wooxy forgot the request (7 days) and the requests
 * table was pruned with it. The rules:
 *
 * - One row per (request, contact), written once, when the contact's part in the request is settled: by the
 *   statement that applies the answer (applyResult, results.ts: success, retry with its fallback, dead), the
 *   one that expires a request Wooxy forgot (expired), the one that sends a stray contact again (stray), and
 *   the one that dead-letters a contact Wooxy refused at the call (rejectContact, delivery.ts: no request id).
 *   Each is a part of a statement that runs anyway, never a round trip of its own.
 * - Not when the call is recorded as well: a request still in flight is the contact's in-flight outbox entry,
 *   which inspect shows, so a row written then would have to be updated at the answer, doubling what the
 *   table writes to the WAL (an insert, then a new version of it) for nothing inspect lacks.
 * - No payload: the identifiers the call named the contact by are what an operator looks for, and a row
 *   stays about 200 bytes in a table that grows with every contact sent.
 * - With history off (history.keepDays: 0, StoreContext.history false) nothing is written; pruning still
 *   deletes what is there, older than 0 days: everything.
 */

/** The history part of a statement, when history is kept; nothing otherwise. */
export function whenKept(ctx: StoreContext, part: RawBuilder<unknown>): RawBuilder<unknown> {
  return ctx.history ? part : sql``;
}

export interface HistoryPruneOptions extends BatchedDeleteOptions {
  /** Rows resolved longer ago than this go. */
  keepMs: number;
}

/**
 * Deletes history rows resolved longer ago than `keepMs`, oldest first, at most `batchSize` per statement
 * (found through history_resolved, deleted by their ctid: no statement scans the table or holds an
 * unbounded number of row locks); returns how many went.
 */
export async function pruneHistory(ctx: StoreContext, fence: Fence | null, opts: HistoryPruneOptions): Promise<number> {
  const { t } = ctx;
  return deleteInBatches(
    ctx,
    fence,
    opts,
    (limit) => sql`
      DELETE FROM ${t.history} WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM ${t.history} WHERE resolved_at < now() - make_interval(secs => ${opts.keepMs / 1000})
        ORDER BY resolved_at LIMIT ${limit}))`,
  );
}

/** One contact's part in one request, as inspect shows it. */
export interface HistoryEntry {
  /** Null: Wooxy refused the contact at the call, so no request exists. */
  requestId: string | null;
  op: string;
  sentAt: string;
  resolvedAt: string;
  outcome: 'success' | 'retry' | 'dead' | 'expired' | 'stray';
  /** Wooxy's per-contact error code (or the connector's: IDENTIFIER_TAKEN, UNRESOLVED, WOOXY_VALIDATION …). */
  code: string | null;
  humanError: string | null;
  /** A retry's next call: add, update, or replace (remove, then add). */
  hint: string | null;
  /** The identifiers the call named the contact by. */
  ids: Record<string, string> | null;
}

/** A contact's history, newest first (history_contact, read backwards). */
export async function readHistory(ctx: StoreContext, mapping: string, key: string, limit = 100): Promise<HistoryEntry[]> {
  const rows = await ctx.db
    .selectFrom('history')
    .select(['request_id', 'op', 'sent_at', 'resolved_at', 'outcome', 'code', 'human_error', 'hint', 'ids'])
    .where('mapping', '=', mapping)
    .where('source_key', '=', key)
    .orderBy('sent_at', 'desc')
    .orderBy('resolved_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    requestId: r.request_id,
    op: r.op,
    sentAt: new Date(r.sent_at).toISOString(),
    resolvedAt: new Date(r.resolved_at).toISOString(),
    outcome: r.outcome,
    code: r.code,
    humanError: r.human_error,
    hint: r.hint,
    ids: r.ids as Record<string, string> | null,
  }));
}
