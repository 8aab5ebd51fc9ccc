import { sql } from 'kysely';
import type { Identifiers, PendingEntry } from '../delivery/plan.js';
import type { ContactPayload } from '../mapping/mapper.js';
import { jsonParam, type StoreContext } from './context.js';
import { upsertDeadLetters } from './dead-letters.js';
import { whenKept } from './history.js';
import { withRetries, type RetryOptions } from './retry.js';
import { transaction, type Fence } from './tx.js';

/**
 * Delivery's statements on the outbox. The rules they keep:
 *
 * - A contact has at most one unresolved request: a pending entry is claimed only while the contact has no
 *   in-flight entry, and the record of a call moves the pending entry to in flight.
 * - A mapping whose removals the mass-removal guard holds (guard.ts) has none of its removals claimed, in the
 *   same snapshot that claims its adds and updates: a hold commits with the removals it holds, so no claim
 *   sees the one without the other.
 * - A claim is state in Postgres (claim_epoch, claimed_by, claimed_until), as graphile-worker's locked_by and
 *   locked_at: two processes never send the same contact at once, whatever their memory says. A lease covers
 *   the whole call (timeout and the grace after it included) and is renewed before each attempt; one that
 *   lapsed (its claimer crashed) can be claimed again. A claim of an older epoch whose call never started
 *   (batch_id unset) is free at once: a deposed leader can no longer mark it (marks are fenced).
 * - Before a call, the pending entry is marked with what the call may do at Wooxy (maybe_ids: identifiers an
 *   add or update may create; maybe_removed: a remove may have happened). A crash between Wooxy's answer and
 *   our record therefore cannot orphan a contact or leave `synced` claiming one Wooxy dropped.
 * - After a call Wooxy accepted, the requestId is recorded, whatever happened to this process's leadership:
 *   the record is idempotent and retried through database outages, so every accepted request is reconciled.
 */

/** What a claimed pending entry carries besides the plan's view of it. */
interface ClaimedRow {
  mapping: string;
  source_key: string;
  payload: ContactPayload | null;
  synced: ContactPayload | null;
  maybe_ids: Identifiers | null;
  maybe_removed: boolean;
  op_hint: PendingEntry['hint'];
  lsn: string;
  attempts: number;
}

export interface ClaimOptions {
  fence: Fence;
  /** Who claims, for status and inspection ("host pid N"). */
  owner: string;
  /** Only these mappings' entries (the configured, unpaused ones): others are never claimed, never dropped. */
  mappings: readonly string[];
  /** Contacts this process is sending now (a lapsed lease of its own must not be claimed twice). */
  busy: ReadonlyArray<readonly [mapping: string, key: string]>;
  limit: number;
  leaseMs: number;
}

/**
 * Claims the oldest due entries that are durable (lsn ≤ the durable LSN), unclaimed, and whose contact has
 * no request in flight. SKIP LOCKED: a claim never waits for an entry another transaction holds, so it can
 * never be part of a deadlock. It runs once per finished batch, so its plan must stay proportional to
 * `limit` however large the backlog, and must not depend on fresh statistics (a backlog arrives faster than
 * autovacuum analyzes, and with an empty outbox's statistics the planner reads and sorts every pending row on
 * every claim: 130 ms at 20k pending). So, for this transaction only, no sorts and no bitmap scans: the plan
 * reads outbox_ready in order and stops at the limit. NOT IN over the busy pairs is one hashed lookup per
 * row; OFFSET 0 keeps the in-flight check a probe of the primary key (as an anti-join it seq-scans the
 * whole outbox). And no JIT: a sort switched off costs 10^10 in the planner's eyes, far past jit_above_cost,
 * so the final ordering of a few hundred rows made every claim compile its expressions first (~300 ms of CPU,
 * which held commit → call at 450 ms and halved delivery).
 */
export async function claimDue(ctx: StoreContext, opts: ClaimOptions): Promise<PendingEntry[]> {
  if (opts.mappings.length === 0 || opts.limit <= 0) return [];
  const { t } = ctx;
  const rows = await transaction(
    ctx,
    opts.fence,
    async (trx) => {
      const { rows } = await sql<ClaimedRow>`
        WITH due AS (
          SELECT o.mapping, o.source_key FROM ${t.outbox} o
          WHERE o.state = 'pending' AND o.next_attempt_at <= now() AND o.mapping = ANY(${opts.mappings}::text[])
            AND o.lsn <= COALESCE((SELECT durable_lsn FROM ${t.repl} WHERE slot = ${opts.fence.slot}), '0/0')
            AND (o.claimed_until IS NULL OR o.claimed_until < now() OR (o.claim_epoch < ${opts.fence.epoch}::bigint AND o.batch_id IS NULL))
            AND (o.mapping, o.source_key) NOT IN (SELECT m, k FROM unnest(${opts.busy.map((b) => b[0])}::text[], ${opts.busy.map((b) => b[1])}::text[]) AS b(m, k))
            AND NOT EXISTS (SELECT 1 FROM ${t.outbox} i WHERE i.mapping = o.mapping AND i.source_key = o.source_key AND i.state = 'inflight' OFFSET 0)
            AND (o.payload IS NOT NULL OR NOT EXISTS (SELECT 1 FROM ${t.guard} g WHERE g.mapping = o.mapping AND g.held_since IS NOT NULL AND o.lsn > g.approved_lsn))
          ORDER BY o.next_attempt_at
          LIMIT ${opts.limit}
          FOR UPDATE OF o SKIP LOCKED
        ), claimed AS (
          UPDATE ${t.outbox} o
          SET claim_epoch = ${opts.fence.epoch}::bigint, claimed_by = ${opts.owner}, claimed_until = now() + make_interval(secs => ${opts.leaseMs / 1000}), batch_id = NULL
          FROM due WHERE o.state = 'pending' AND o.mapping = due.mapping AND o.source_key = due.source_key
          RETURNING o.mapping, o.source_key, o.payload, o.maybe_ids, o.maybe_removed, o.op_hint, o.lsn, o.attempts, o.next_attempt_at
        )
        SELECT c.mapping, c.source_key, c.payload, s.synced, c.maybe_ids, c.maybe_removed, c.op_hint, c.lsn::text AS lsn, c.attempts
        FROM claimed c JOIN ${t.state} s ON s.mapping = c.mapping AND s.source_key = c.source_key
        ORDER BY c.next_attempt_at`.execute(trx);
      return rows;
    },
    { settings: { enable_sort: 'off', enable_bitmapscan: 'off', jit: 'off' } },
  );
  return rows.map((r) => ({
    mapping: r.mapping,
    key: r.source_key,
    payload: r.payload,
    synced: r.synced,
    maybeIds: r.maybe_ids,
    maybeRemoved: r.maybe_removed,
    hint: r.op_hint,
    lsn: r.lsn,
    attempts: r.attempts,
  }));
}

type Key = { mapping: string; key: string };
const keysParam = (entries: readonly Key[]) => jsonParam(entries.map((e) => ({ m: e.mapping, k: e.key })));

export interface ReleaseOptions {
  /** Due again after this long (default: as it was). */
  delayMs?: number;
  lastError?: string;
}

/**
 * Gives claims back (the plan deferred the entries, the call failed, or was never made). Not fenced: giving
 * up a claim is always safe, and a deposed leader should free what it can. Only this epoch's claims.
 */
export async function releaseClaims(ctx: StoreContext, fence: Fence, entries: readonly Key[], opts: ReleaseOptions = {}): Promise<void> {
  if (entries.length === 0) return;
  const delay = opts.delayMs === undefined ? null : opts.delayMs / 1000;
  await withRetries(
    () =>
      sql`
        UPDATE ${ctx.t.outbox} o SET claim_epoch = NULL, claimed_by = NULL, claimed_until = NULL, batch_id = NULL,
          next_attempt_at = CASE WHEN ${delay}::float8 IS NULL THEN o.next_attempt_at ELSE now() + make_interval(secs => ${delay}::float8) END,
          last_error = COALESCE(${opts.lastError ?? null}::text, o.last_error), updated_at = now()
        FROM (SELECT * FROM jsonb_to_recordset(${keysParam(entries)}) AS x(m text, k text) ORDER BY m, k) x
        WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND o.claim_epoch = ${fence.epoch}::bigint`.execute(ctx.db),
    { connection: true },
  );
}

/**
 * The plan decided there is nothing to send for these entries (Wooxy holds the payload already, or the
 * contact is not there to remove): each goes, unless a newer change replaced it meanwhile (then its claim is
 * released). A contact whose entry went is in sync, so its dead letter goes too (a row fixed back to what
 * Wooxy holds; dead letters describe the present), unless it is a ROW_INVALID one about a change newer than
 * the entry (the state's LSN is past it: the row is invalid now); outbox before dead letters, as `cleared`
 * reads `gone`.
 * Then states with nothing left to say (deleted at the source, absent from Wooxy, no entry) go too, in a
 * statement of their own: it must see the entries deleted here.
 */
export async function dropSettled(ctx: StoreContext, fence: Fence, entries: ReadonlyArray<Key & { lsn: string }>): Promise<void> {
  if (entries.length === 0) return;
  const { t } = ctx;
  const x = jsonParam(entries.map((e) => ({ m: e.mapping, k: e.key, l: e.lsn })));
  await transaction(ctx, fence, async (trx) => {
    await sql`
      WITH x AS (SELECT * FROM jsonb_to_recordset(${x}) AS x(m text, k text, l pg_lsn) ORDER BY m, k),
      gone AS (
        DELETE FROM ${t.outbox} o USING x
        WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND o.lsn = x.l AND o.claim_epoch = ${fence.epoch}::bigint
        RETURNING o.mapping, o.source_key, o.lsn
      ), cleared AS (
        DELETE FROM ${t.dead} d USING gone g LEFT JOIN ${t.state} s ON s.mapping = g.mapping AND s.source_key = g.source_key
        WHERE d.mapping = g.mapping AND d.source_key = g.source_key AND NOT (d.error_code = 'ROW_INVALID' AND COALESCE(s.lsn > g.lsn, false))
        RETURNING 1
      )
      UPDATE ${t.outbox} o SET claim_epoch = NULL, claimed_by = NULL, claimed_until = NULL, batch_id = NULL
      FROM x WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND o.claim_epoch = ${fence.epoch}::bigint
        AND NOT EXISTS (SELECT 1 FROM gone g WHERE g.mapping = x.m AND g.source_key = x.k)`.execute(trx);
  });
  await collectStates(ctx, entries);
}

/** Contacts deleted at the source and absent from Wooxy need no state any more. */
export async function collectStates(ctx: StoreContext, entries: readonly Key[]): Promise<void> {
  if (entries.length === 0) return;
  const { t } = ctx;
  await withRetries(() =>
    sql`DELETE FROM ${t.state} s USING (SELECT * FROM jsonb_to_recordset(${keysParam(entries)}) AS x(m text, k text) ORDER BY m, k) x
      WHERE s.mapping = x.m AND s.source_key = x.k AND s.row IS NULL AND s.desired IS NULL AND s.synced IS NULL
        AND NOT EXISTS (SELECT 1 FROM ${t.outbox} o WHERE o.mapping = s.mapping AND o.source_key = s.source_key)`.execute(ctx.db),
  );
}

/** One contact of a call about to be made, and what the call may do to it at Wooxy. */
export interface Mark extends Key {
  /** Identifiers an add or update may create (null for a remove). */
  ids: Identifiers | null;
  /** The call removes the contact. */
  removes: boolean;
}

/**
 * Marks the entries of a call before it is made: its batch, what it may do at Wooxy, and a lease that covers
 * the call. Fenced: a deposed leader makes no new call. Returns the entries still claimed by this epoch (a
 * claim that lapsed and was taken by another process is not marked, and must not be sent).
 */
export async function markSending(ctx: StoreContext, fence: Fence, batchId: string, marks: readonly Mark[], leaseMs: number): Promise<Set<string>> {
  const { t } = ctx;
  const x = jsonParam(marks.map((e) => ({ m: e.mapping, k: e.key, ids: e.ids, rm: e.removes })));
  const rows = await transaction(ctx, fence, async (trx) => {
    // No FOR UPDATE first: a row lock is a WAL record of its own, and the update takes the lock anyway. The
    // rows are visited in key order (the sorted list drives a nested loop over the primary key), the lock
    // order; the claim_epoch test is checked again on a row another transaction changed meanwhile.
    const { rows } = await sql<{ mapping: string; source_key: string }>`
      UPDATE ${t.outbox} o SET
        maybe_ids = CASE WHEN l.ids IS NULL OR l.ids = 'null' THEN o.maybe_ids ELSE COALESCE(o.maybe_ids, '{}'::jsonb) || l.ids END,
        maybe_removed = o.maybe_removed OR l.rm, batch_id = ${batchId}, sent_at = now(),
        claimed_until = now() + make_interval(secs => ${leaseMs / 1000})
      FROM (SELECT * FROM jsonb_to_recordset(${x}) AS x(m text, k text, ids jsonb, rm boolean) ORDER BY m, k) l
      WHERE o.state = 'pending' AND o.mapping = l.m AND o.source_key = l.k AND o.claim_epoch = ${fence.epoch}::bigint
      RETURNING o.mapping, o.source_key`.execute(trx);
    return rows;
  });
  return new Set(rows.map((r) => `${r.mapping}\u0000${r.source_key}`));
}

/** Extends the lease of a call's entries before another attempt; fenced. Returns how many are still this epoch's. */
export async function renewLeases(ctx: StoreContext, fence: Fence, entries: readonly Key[], leaseMs: number): Promise<number> {
  return transaction(ctx, fence, async (trx) => {
    const r = await sql`
      UPDATE ${ctx.t.outbox} o SET claimed_until = now() + make_interval(secs => ${leaseMs / 1000})
      FROM (SELECT * FROM jsonb_to_recordset(${keysParam(entries)}) AS x(m text, k text) ORDER BY m, k) x
      WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND o.claim_epoch = ${fence.epoch}::bigint`.execute(trx);
    return Number(r.numAffectedRows ?? 0);
  });
}

/** One contact of an accepted call, as the record needs it. */
export interface SentContact extends Key {
  /** The payload sent (null for a remove). */
  payload: ContactPayload | null;
  /** The identifiers this call names the contact by: its results are matched back on them. */
  ids: Identifiers;
  /** The pending entry's LSN when claimed: a newer change (another LSN) stays pending. */
  lsn: string;
  attempts: number;
  /** A remove that clears an identifier: the pending entry stays for the add that follows. */
  keepPending: boolean;
}

export interface AcceptedCall {
  requestId: string;
  batchId: string;
  mapping: string;
  listId: string;
  op: 'add' | 'update' | 'remove';
  epoch: string;
  contacts: readonly SentContact[];
}

/**
 * Records a request Wooxy accepted, in one transaction: the request, and each contact's move from pending to
 * in flight. Idempotent (a retry after a lost COMMIT answer changes nothing) and not fenced: a call that
 * Wooxy accepted is recorded whoever leads now, or its request would never be reconciled.
 *
 * A contact that already has an in-flight entry of another request (two senders overlapped: a lapsed lease)
 * cannot get a second one; it is kept in the request's `stray` list instead, so that when this request
 * resolves the contact's current state is sent again. Everything not inserted and not already recorded by an
 * earlier attempt of this same record is stray, so a concurrent record is never missed. A pending entry stays
 * when a newer change replaced it meanwhile or a remove clears an identifier (its add follows); either way its
 * claim ends here.
 */
export async function recordAccepted(ctx: StoreContext, call: AcceptedCall, retry: RetryOptions): Promise<{ stray: number }> {
  const { t } = ctx;
  const x = jsonParam(
    call.contacts.map((c) => ({ m: c.mapping, k: c.key, p: c.payload, ids: c.ids, l: c.lsn, a: c.attempts, keep: c.keepPending })),
  );
  const r = await withRetries(
    () =>
      ctx.db.transaction().execute(async (trx) => {
        // The move: an in-flight entry for each contact that has none (plain INSERT, not ON CONFLICT: a
        // speculative insert writes a second WAL record per row; a concurrent record of another request for the
        // same contact fails this one on the unique key, and the retry finds it in flight: stray), the request,
        // and the pending entries the call covered gone (an entry a newer change replaced has another LSN, and
        // stays). No FOR UPDATE: a changed entry is tested again by the DELETE itself.
        const moved = await sql<{ stray: number; moved: Array<{ m: string; k: string }> | null }>`
          WITH x AS (SELECT * FROM jsonb_to_recordset(${x}) AS x(m text, k text, p jsonb, ids jsonb, l pg_lsn, a int, keep boolean)),
          ours AS (
            SELECT i.mapping, i.source_key FROM ${t.outbox} i JOIN x ON i.mapping = x.m AND i.source_key = x.k
            WHERE i.state = 'inflight' AND i.request_id = ${call.requestId}
          ),
          moved AS (
            INSERT INTO ${t.outbox} (mapping, source_key, state, payload, lsn, attempts, request_id, batch_id, sent_op, sent_at, maybe_ids, maybe_removed)
            SELECT m, k, 'inflight', NULLIF(p, 'null'), l, a, ${call.requestId}, ${call.batchId}, ${call.op}, now(), ids, ${call.op === 'remove'} FROM x
            WHERE NOT EXISTS (SELECT 1 FROM ${t.outbox} i WHERE i.mapping = x.m AND i.source_key = x.k AND i.state = 'inflight')
            ORDER BY m, k
            RETURNING mapping, source_key
          ),
          stray AS (
            SELECT x.m, x.k, x.ids FROM x
            WHERE NOT EXISTS (SELECT 1 FROM moved v WHERE v.mapping = x.m AND v.source_key = x.k)
              AND NOT EXISTS (SELECT 1 FROM ours u WHERE u.mapping = x.m AND u.source_key = x.k)
          ),
          req AS (
            INSERT INTO ${t.requests} (request_id, mapping, list_id, op, batch_id, contact_count, epoch, stray)
            VALUES (${call.requestId}, ${call.mapping}, ${call.listId}, ${call.op}, ${call.batchId}, ${call.contacts.length}, ${call.epoch}::bigint,
                    (SELECT jsonb_agg(jsonb_build_object('m', m, 'k', k, 'ids', ids)) FROM stray))
            ON CONFLICT (request_id) DO NOTHING
          ),
          gone AS (
            DELETE FROM ${t.outbox} o USING x JOIN moved v ON v.mapping = x.m AND v.source_key = x.k
            WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND o.lsn = x.l AND NOT x.keep
            RETURNING 1
          )
          SELECT (SELECT count(*) FROM stray)::int AS stray, (SELECT count(*) FROM gone) AS gone,
                 (SELECT jsonb_agg(jsonb_build_object('m', mapping, 'k', source_key)) FROM moved) AS moved`.execute(trx);
        const row = moved.rows[0];
        // What stays pending (a newer change; the add after a remove that clears an identifier) loses its claim,
        // seen after the deletes above: recorded, the call's outcome is tracked by its request, which clears or
        // renews the doubt.
        await sql`
          WITH x AS (SELECT * FROM jsonb_to_recordset(${x}) AS x(m text, k text, p jsonb, ids jsonb, l pg_lsn, a int, keep boolean)),
          v AS (SELECT * FROM jsonb_to_recordset(${jsonParam(row?.moved ?? [])}) AS v(m text, k text))
          UPDATE ${t.outbox} o SET claim_epoch = NULL, claimed_by = NULL, claimed_until = NULL, batch_id = NULL,
            op_hint = CASE WHEN x.keep AND v.m IS NOT NULL THEN 'add' ELSE o.op_hint END,
            maybe_removed = CASE WHEN v.m IS NOT NULL THEN false ELSE o.maybe_removed END
          FROM (SELECT * FROM x ORDER BY m, k) x LEFT JOIN v ON v.m = x.m AND v.k = x.k
          WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k`.execute(trx);
        return row;
      }),
    { ...retry, connection: true, anyError: true },
  );
  return { stray: r?.stray ?? 0 };
}

/**
 * Wooxy rejected a lone contact with a documented data error: it leaves the outbox (unless a newer change
 * replaced it) and becomes a dead letter with Wooxy's message. Fenced; outbox before dead letters. The
 * refusal also goes to the contact's history (no request id: Wooxy made none), with the identifiers the
 * entry was marked with before the call.
 */
export async function rejectContact(
  ctx: StoreContext,
  fence: Fence,
  entry: Key & { lsn: string },
  dead: { op: string; payload: unknown; code: string; message: string },
): Promise<void> {
  await transaction(ctx, fence, async (trx) => {
    await sql`
      ${whenKept(
        ctx,
        sql`WITH logged AS (
        INSERT INTO ${ctx.t.history} (mapping, source_key, request_id, op, sent_at, outcome, code, human_error, ids)
        SELECT mapping, source_key, NULL, ${dead.op}, COALESCE(sent_at, now()), 'dead', ${dead.code}, ${dead.message}, maybe_ids
        FROM ${ctx.t.outbox} WHERE state = 'pending' AND mapping = ${entry.mapping} AND source_key = ${entry.key}
      )`,
      )}
      DELETE FROM ${ctx.t.outbox} WHERE state = 'pending' AND mapping = ${entry.mapping} AND source_key = ${entry.key} AND lsn = ${entry.lsn}::pg_lsn`.execute(trx);
    await sql`UPDATE ${ctx.t.outbox} SET claim_epoch = NULL, claimed_by = NULL, claimed_until = NULL, batch_id = NULL
      WHERE state = 'pending' AND mapping = ${entry.mapping} AND source_key = ${entry.key}`.execute(trx);
    await upsertDeadLetters(ctx, trx, [{ mapping: entry.mapping, key: entry.key, ...dead }]);
  });
}
