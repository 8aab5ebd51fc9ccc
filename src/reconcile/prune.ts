import { sql } from 'kysely';
import type { DbHandle } from '../db/index.js';

export interface PruneOptions {
  handle: DbHandle;
  /** Resolved requests younger than this stay (the vendor itself keeps statuses 7 days). */
  keepResolvedMs: number;
  /** Rows per DELETE: each statement is a short transaction, whatever the backlog. */
  batchSize?: number;
  /** Statements per call at most; what is left waits for the next call. */
  maxBatches?: number;
}

/**
 * Deletes resolved requests (done, fail, expired) resolved longer ago than the retention, in batches of
 * primary keys so no statement holds locks on an unbounded number of rows, and returns how many went. Nothing
 * reads a resolved request but applyStatus, which treats a missing one as unknown and changes nothing: a late
 * webhook or poll for a pruned request is ignored as it would be for a resolved one. A request that still has
 * in-flight outbox entries is kept whatever its status: those entries are the contacts' only record of it.
 */
export async function pruneResolvedRequests(opts: PruneOptions): Promise<number> {
  const { handle, keepResolvedMs } = opts;
  const batchSize = opts.batchSize ?? 1_000;
  const maxBatches = opts.maxBatches ?? 50;
  const t = { requests: sql.id(handle.schema, 'requests'), outbox: sql.id(handle.schema, 'outbox') };
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const result = await sql`
      DELETE FROM ${t.requests} WHERE request_id IN (
        SELECT r.request_id FROM ${t.requests} r
        WHERE r.status <> 'new' AND COALESCE(r.resolved_at, r.sent_at) < now() - make_interval(secs => ${keepResolvedMs / 1000})
          AND NOT EXISTS (SELECT 1 FROM ${t.outbox} o WHERE o.request_id = r.request_id AND o.state = 'inflight')
        LIMIT ${batchSize})`.execute(handle.db);
    const deleted = Number(result.numAffectedRows ?? 0n);
    total += deleted;
    if (deleted < batchSize) break;
  }
  return total;
}
