import { sql } from 'kysely';
import type { Identifiers } from '../delivery/plan.js';
import type { ContactPayload } from '../mapping/mapper.js';
import { byContact, jsonParam, type StoreContext } from './context.js';
import { collectStates } from './delivery.js';
import { settleDeadLetters, upsertDeadLetters, type Blocker, type Released } from './dead-letters.js';
import { whenKept } from './history.js';
import { findHolders, type Holder } from './identifiers.js';
import { withRetries } from './retry.js';
import { deleteInBatches, transaction, type BatchedDeleteOptions, type Fence, type Trx } from './tx.js';

/**
 * Reconciliation's statements: applying a request's final status to its contacts, expiring requests Wooxy
 * forgot, the polling bookkeeping, and pruning. A status is applied once: the request row is locked first
 * (it decides whether anything happens) and a resolved request is left alone.
 */

/** An in-flight entry of a request, as the verdicts need it. */
export interface InflightEntry {
  mapping: string;
  source_key: string;
  payload: ContactPayload | null;
  sent_op: 'add' | 'update' | 'remove';
  lsn: string;
  attempts: number;
  maybe_ids: Identifiers | null;
}

/** A contact of an overlapping call, recorded on the request (see recordAccepted). */
export interface StrayContact {
  m: string;
  k: string;
  ids: Identifiers | null;
}

/** What the answer means for one in-flight entry (reconcile/apply.ts decides it). */
export interface ResultRow {
  m: string;
  k: string;
  p: ContactPayload | null;
  l: string;
  op: 'add' | 'update' | 'remove';
  ids: Identifiers;
  kind: 'success' | 'retry' | 'dead';
  hint: 'add' | 'update' | 'replace' | null;
  delay: number;
  a: number;
  code: string | null;
  human: string | null;
  /** Wooxy says an identifier of the payload belongs to another contact: these are looked up (findHolders) and the row settled. */
  want?: Identifiers | null;
  /** A dead row: the contact holding the identifier it wants (IDENTIFIER_TAKEN). */
  blocked?: Blocker | null;
}

/** Turns rows whose identifiers are taken into their final verdict, given who holds them (reconcile/identifiers.ts). */
export type SettleTaken = (rows: ResultRow[], holders: Holder[]) => ResultRow[];

export type ApplyOutcome = 'applied' | 'still-new' | 'duplicate' | 'unknown';

export interface ApplyReport {
  outcome: ApplyOutcome;
  rows: ResultRow[];
  stray: number;
  /** Contacts queued again because a contact of this request let go of an identifier they were blocked on. */
  released: Released[];
}

/**
 * Applies a final status. `verdicts` turns the request's in-flight entries into result rows (pure); the
 * effects are then written in the lock order: the request (locked first), contact states (what Wooxy now
 * holds), outbox entries (in-flight ones go, retries become pending), dead letters, and the request resolved.
 * A contact of the request's stray list is sent again from its current state, Wooxy's copy being in doubt.
 *
 * Rows told an identifier belongs to another contact (`want`) are settled by `settle` once the holders of
 * those identifiers are known, read after this request's own successes are written (two new contacts of one
 * request may share an email: the one Wooxy took first holds it). Contacts Wooxy confirmed leave the
 * dead-letter table, and release the contacts blocked on an identifier they no longer hold.
 */
export async function applyResult(
  ctx: StoreContext,
  fence: Fence | null,
  status: { id: string; status: 'new' | 'done' | 'fail' },
  via: 'poll' | 'webhook',
  verdicts: (entries: InflightEntry[]) => ResultRow[],
  settle: SettleTaken = (rows) => rows,
): Promise<ApplyReport> {
  const { t } = ctx;
  return transaction(ctx, fence, async (trx): Promise<ApplyReport> => {
    const req = await sql<{ status: string; stray: StrayContact[] | null; op: string; sent_at: Date }>`
      SELECT status, stray, op, sent_at FROM ${t.requests} WHERE request_id = ${status.id} FOR UPDATE`.execute(trx);
    const current = req.rows[0];
    if (current === undefined) return { outcome: 'unknown', rows: [], stray: 0, released: [] };
    if (current.status !== 'new') return { outcome: 'duplicate', rows: [], stray: 0, released: [] };
    if (status.status === 'new') {
      await sql`UPDATE ${t.requests} SET checked_at = now() WHERE request_id = ${status.id}`.execute(trx);
      return { outcome: 'still-new', rows: [], stray: 0, released: [] };
    }
    const { rows: entries } = await sql<InflightEntry>`
      SELECT mapping, source_key, payload, sent_op, lsn::text AS lsn, attempts, maybe_ids FROM ${t.outbox}
      WHERE state = 'inflight' AND request_id = ${status.id}`.execute(trx);
    let rows = verdicts(entries).sort((a, b) => byContact({ mapping: a.m, key: a.k }, { mapping: b.m, key: b.k }));
    const successes = rows.filter((r) => r.kind === 'success');
    // What Wooxy now holds.
    await sql`
      UPDATE ${t.state} s SET synced = CASE WHEN x.op = 'remove' THEN NULL ELSE NULLIF(x.p, 'null') END, updated_at = now()
      FROM (SELECT * FROM jsonb_to_recordset(${jsonParam(successes)}) AS x(m text, k text, p jsonb, op text) ORDER BY m, k) x
      WHERE s.mapping = x.m AND s.source_key = x.k`.execute(trx);
    const asking = rows.filter((r) => r.want);
    if (asking.length > 0) {
      const holders: Holder[] = [];
      for (const mapping of new Set(asking.map((r) => r.m))) {
        holders.push(...(await findHolders(ctx, trx, mapping, asking.filter((r) => r.m === mapping).map((r) => r.want!))));
      }
      rows = settle(rows, holders);
    }
    const x = jsonParam(rows);
    const spec = sql`jsonb_to_recordset(${x}) AS x(m text, k text, p jsonb, l pg_lsn, op text, ids jsonb, kind text, hint text, delay int, a int, code text, human text)`;
    // The in-flight entries go, each leaving its history row; retries become (or update) the pending entry.
    await sql`
      WITH x AS (SELECT * FROM ${spec} ORDER BY m, k),
      gone AS (
        DELETE FROM ${t.outbox} o USING x WHERE o.state = 'inflight' AND o.request_id = ${status.id} AND o.mapping = x.m AND o.source_key = x.k
        RETURNING o.mapping, o.source_key, o.sent_at
      ), ${whenKept(
        ctx,
        sql`logged AS (
        INSERT INTO ${t.history} (mapping, source_key, request_id, op, sent_at, outcome, code, human_error, hint, ids)
        SELECT x.m, x.k, ${status.id}, x.op, COALESCE(g.sent_at, now()), x.kind, x.code, x.human, x.hint, NULLIF(x.ids, '{}'::jsonb)
        FROM gone g JOIN x ON x.m = g.mapping AND x.k = g.source_key
      ), `,
      )}retried AS (
        INSERT INTO ${t.outbox} AS o (mapping, source_key, state, payload, lsn, attempts, op_hint, maybe_ids, maybe_removed, next_attempt_at, last_error)
        SELECT m, k, 'pending', CASE WHEN op = 'remove' THEN NULL ELSE NULLIF(p, 'null') END, l, a, hint,
               CASE WHEN op = 'remove' THEN NULL ELSE ids END, op = 'remove', now() + make_interval(secs => delay / 1000.0), code || ': ' || human
        FROM x WHERE kind = 'retry'
        -- A newer change is pending already: keep its payload, carry over what this answer taught us.
        ON CONFLICT (mapping, source_key, state) DO UPDATE SET
          op_hint = EXCLUDED.op_hint, attempts = GREATEST(o.attempts, EXCLUDED.attempts),
          maybe_ids = COALESCE(o.maybe_ids, '{}'::jsonb) || COALESCE(EXCLUDED.maybe_ids, '{}'::jsonb),
          maybe_removed = o.maybe_removed OR EXCLUDED.maybe_removed,
          next_attempt_at = EXCLUDED.next_attempt_at, last_error = EXCLUDED.last_error, updated_at = now()
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM retried)`.execute(trx);
    const stray = current.stray ?? [];
    await requeueInDoubt(ctx, trx, stray.map((c) => ({ ...c, r: status.id, op: current.op, at: current.sent_at, why: 'stray' })));
    const released = await settleDeadLetters(ctx, trx, successes.map((r) => ({ mapping: r.m, key: r.k, lsn: r.l })));
    await upsertDeadLetters(
      ctx,
      trx,
      rows
        .filter((r) => r.kind === 'dead')
        .map((r) => ({ mapping: r.m, key: r.k, op: r.op, payload: r.p, code: r.code ?? 'UNKNOWN', message: r.human ?? '', attempts: r.a, blockedBy: r.blocked ?? null })),
    );
    await sql`UPDATE ${t.requests} SET status = ${status.status}, resolved_at = now(), resolved_via = ${via}, checked_at = now() WHERE request_id = ${status.id}`.execute(trx);
    return { outcome: 'applied', rows, stray: stray.length, released };
  }).then(async (report) => {
    // Contacts deleted at the source and now gone from Wooxy need no state any more; only a removal can leave such a state.
    const removed = report.rows.filter((r) => r.kind === 'success' && r.op === 'remove').map((r) => ({ mapping: r.m, key: r.k }));
    await collectStates(ctx, removed);
    return report;
  });
}

/** A contact whose copy at Wooxy is in doubt, with the request that left it so (for its history row). */
interface InDoubt extends StrayContact {
  r: string;
  op: string;
  at: Date;
  why: 'stray' | 'expired';
}

/**
 * Contacts whose copy at Wooxy is in doubt (a call of theirs was applied beside the one we tracked): their
 * current desired state is sent again, with the identifiers that call named, and as possibly absent, so the
 * plan neither skips it as unchanged nor trusts `synced` alone. A contact still in flight waits its turn.
 * Each leaves a history row naming the request.
 */
async function requeueInDoubt(ctx: StoreContext, trx: Trx, contacts: readonly InDoubt[]): Promise<void> {
  if (contacts.length === 0) return;
  const { t } = ctx;
  await sql`
    ${whenKept(
      ctx,
      sql`WITH logged AS (
      INSERT INTO ${t.history} (mapping, source_key, request_id, op, sent_at, outcome, ids)
      SELECT m, k, r, op, at, why, NULLIF(ids, 'null') FROM jsonb_to_recordset(${jsonParam(contacts)}) AS x(m text, k text, ids jsonb, r text, op text, at timestamptz, why text)
    )`,
    )}
    INSERT INTO ${t.outbox} AS o (mapping, source_key, state, payload, lsn, maybe_ids, maybe_removed)
    SELECT s.mapping, s.source_key, 'pending', s.desired, s.lsn, NULLIF(x.ids, 'null'), true
    FROM jsonb_to_recordset(${jsonParam(contacts)}) AS x(m text, k text, ids jsonb) JOIN ${t.state} s ON s.mapping = x.m AND s.source_key = x.k
    ORDER BY s.mapping, s.source_key
    ON CONFLICT (mapping, source_key, state) DO UPDATE SET
      maybe_ids = COALESCE(o.maybe_ids, '{}'::jsonb) || COALESCE(EXCLUDED.maybe_ids, '{}'::jsonb), maybe_removed = true, next_attempt_at = now(), updated_at = now()`.execute(trx);
}

/**
 * Requests Wooxy no longer knows (past its retention): their outcome is unknowable, so they are marked
 * expired and their contacts go back to pending, from their current state, with what the call may have done.
 */
export async function expireRequests(ctx: StoreContext, fence: Fence | null, ids: readonly string[]): Promise<void> {
  const { t } = ctx;
  await transaction(ctx, fence, async (trx) => {
    const { rows } = await sql<{ request_id: string; op: string; sent_at: Date; stray: StrayContact[] | null }>`
      UPDATE ${t.requests} SET status = 'expired', resolved_at = now(), resolved_via = 'expired'
      WHERE request_id = ANY(${[...ids].sort()}::text[]) AND status = 'new' RETURNING request_id, op, sent_at, stray`.execute(trx);
    await sql`
      WITH gone AS (
        DELETE FROM ${t.outbox} WHERE state = 'inflight' AND request_id = ANY(${[...ids]}::text[])
        RETURNING mapping, source_key, payload, lsn, attempts, maybe_ids, sent_op, request_id, sent_at
      )${whenKept(
        ctx,
        sql`, logged AS (
        INSERT INTO ${t.history} (mapping, source_key, request_id, op, sent_at, outcome, ids)
        SELECT mapping, source_key, request_id, sent_op, COALESCE(sent_at, now()), 'expired', maybe_ids FROM gone
      )`,
      )}
      INSERT INTO ${t.outbox} AS o (mapping, source_key, state, payload, lsn, attempts, maybe_ids, maybe_removed)
      SELECT mapping, source_key, 'pending', payload, lsn, attempts, maybe_ids, sent_op = 'remove' FROM gone ORDER BY mapping, source_key
      ON CONFLICT (mapping, source_key, state) DO UPDATE
        SET maybe_ids = COALESCE(o.maybe_ids, '{}'::jsonb) || COALESCE(EXCLUDED.maybe_ids, '{}'::jsonb),
            maybe_removed = o.maybe_removed OR EXCLUDED.maybe_removed, updated_at = now()`.execute(trx);
    await requeueInDoubt(ctx, trx, rows.flatMap((r) => (r.stray ?? []).map((c) => ({ ...c, r: r.request_id, op: r.op, at: r.sent_at, why: 'expired' as const }))));
  });
}

/** How many requests are unresolved, and the age of the oldest (seconds). */
export async function unresolvedStats(ctx: StoreContext): Promise<{ count: number; oldestSeconds: number }> {
  const { rows } = await sql<{ n: number; oldest: number | null }>`
    SELECT count(*)::int AS n, EXTRACT(EPOCH FROM now() - min(sent_at))::float8 AS oldest FROM ${ctx.t.requests} WHERE status = 'new'`.execute(ctx.db);
  return { count: rows[0]?.n ?? 0, oldestSeconds: rows[0]?.oldest ?? 0 };
}

/** Unresolved requests, checked longest ago first. */
export async function requestsToCheck(ctx: StoreContext, limit: number): Promise<Array<{ requestId: string; ageMs: number }>> {
  const { rows } = await sql<{ request_id: string; age_ms: number }>`
    SELECT request_id, (EXTRACT(EPOCH FROM now() - sent_at) * 1000)::float8 AS age_ms FROM ${ctx.t.requests}
    WHERE status = 'new' ORDER BY checked_at NULLS FIRST, sent_at LIMIT ${limit}`.execute(ctx.db);
  return rows.map((r) => ({ requestId: r.request_id, ageMs: r.age_ms }));
}

export async function touchChecked(ctx: StoreContext, ids: readonly string[]): Promise<void> {
  await withRetries(() => sql`UPDATE ${ctx.t.requests} SET checked_at = now() WHERE request_id = ANY(${[...ids].sort()}::text[]) AND status = 'new'`.execute(ctx.db));
}

/** Unresolved requests older than `afterMs` not warned about yet: marked warned and returned, once each. */
export async function takeOldUnwarned(ctx: StoreContext, afterMs: number): Promise<Array<{ requestId: string; mapping: string; sentAt: Date }>> {
  const { rows } = await withRetries(() =>
    sql<{ request_id: string; mapping: string; sent_at: Date }>`
      UPDATE ${ctx.t.requests} SET warned = true
      WHERE status = 'new' AND NOT warned AND sent_at < now() - make_interval(secs => ${afterMs / 1000})
      RETURNING request_id, mapping, sent_at`.execute(ctx.db),
  );
  return rows.map((r) => ({ requestId: r.request_id, mapping: r.mapping, sentAt: r.sent_at }));
}

export interface PruneOptions extends BatchedDeleteOptions {
  /** Resolved requests younger than this stay (the vendor itself keeps statuses 7 days). */
  keepResolvedMs: number;
}

/**
 * Deletes resolved requests (done, fail, expired) resolved longer ago than the retention, in batches of
 * primary keys so no statement holds locks on an unbounded number of rows, and returns how many went. Nothing
 * reads a resolved request but applyResult, which treats a missing one as unknown and changes nothing: a late
 * webhook or poll for a pruned request is ignored as it would be for a resolved one. A request that still has
 * in-flight outbox entries is kept whatever its status: those entries are the contacts' only record of it.
 */
export async function pruneResolved(ctx: StoreContext, fence: Fence | null, opts: PruneOptions): Promise<number> {
  const { t } = ctx;
  return deleteInBatches(
    ctx,
    fence,
    opts,
    (limit) => sql`
      DELETE FROM ${t.requests} WHERE request_id IN (
        SELECT r.request_id FROM ${t.requests} r
        WHERE r.status <> 'new' AND COALESCE(r.resolved_at, r.sent_at) < now() - make_interval(secs => ${opts.keepResolvedMs / 1000})
          AND NOT EXISTS (SELECT 1 FROM ${t.outbox} o WHERE o.request_id = r.request_id AND o.state = 'inflight')
        LIMIT ${limit})`,
  );
}
