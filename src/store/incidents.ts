import { sql } from 'kysely';
import type { StoreContext } from './context.js';
import { PauseEvents } from './pauses.js';

/**
 * What went wrong, and when, as `status` reads it. Each stage's latest error comes with its time (by the
 * database's clock), so an old dead letter is never shown as today's problem:
 *
 * - source: the latest error event (a slot or publication lost, a mapping stopped, a source gap);
 * - delivery: the latest of an outbox entry's last error (a call that failed and waits to be sent again) and a
 *   delivery pause;
 * - reconciliation: the latest request Wooxy failed, or that expired unresolved (its contacts were sent again);
 * - dead letters: the latest contact dead-lettered (or dead-lettered again).
 */
export interface StageErrorRow {
  code: string | null;
  mapping: string | null;
  key: string | null;
  message: string;
  at: Date;
  ageSeconds: number;
}

/** The slot's gaps: the stream missed changes, and every mapping was reconciled (slot.ts names them). */
export const GAP_CODES = ['SLOT_LOST', 'SLOT_INVALIDATED', 'SLOT_AHEAD', 'PUBLICATION_LOST'] as const;

const events = (ctx: StoreContext) => sql.id(ctx.schema, 'events');

type Row = { code: string | null; mapping: string | null; key: string | null; message: string; at: Date; age: number };
const stageError = (r: Row | undefined): StageErrorRow | null =>
  r ? { code: r.code, mapping: r.mapping, key: r.key, message: r.message, at: r.at, ageSeconds: r.age } : null;

export async function lastSourceError(ctx: StoreContext): Promise<StageErrorRow | null> {
  const { rows } = await sql<Row>`
    SELECT code, mapping, NULL::text AS key, message, at, EXTRACT(EPOCH FROM now() - at)::float8 AS age
    FROM ${events(ctx)} WHERE level = 'error' AND code <> ${PauseEvents.paused}
    ORDER BY id DESC LIMIT 1`.execute(ctx.db);
  return stageError(rows[0]);
}

export async function lastDeliveryError(ctx: StoreContext): Promise<StageErrorRow | null> {
  const { rows } = await sql<Row>`
    SELECT code, mapping, key, message, at, EXTRACT(EPOCH FROM now() - at)::float8 AS age FROM (
      (SELECT NULL::text AS code, mapping, source_key AS key, last_error AS message, updated_at AS at
         FROM ${ctx.t.outbox} WHERE last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 1)
      UNION ALL
      (SELECT code, mapping, NULL, message, at FROM ${events(ctx)} WHERE code = ${PauseEvents.paused} ORDER BY id DESC LIMIT 1)
    ) e ORDER BY at DESC LIMIT 1`.execute(ctx.db);
  return stageError(rows[0]);
}

export async function lastReconcileError(ctx: StoreContext): Promise<StageErrorRow | null> {
  const { rows } = await sql<{ status: 'fail' | 'expired'; request_id: string; mapping: string; op: string; contact_count: number; at: Date; age: number }>`
    SELECT status, request_id, mapping, op, contact_count, resolved_at AS at, EXTRACT(EPOCH FROM now() - resolved_at)::float8 AS age
    FROM ${ctx.t.requests} WHERE status IN ('fail', 'expired') AND resolved_at IS NOT NULL
    ORDER BY resolved_at DESC LIMIT 1`.execute(ctx.db);
  const r = rows[0];
  if (!r) return null;
  const what = `request ${r.request_id} (${r.op}, ${r.contact_count} contact(s))`;
  return {
    code: r.status === 'fail' ? 'REQUEST_FAILED' : 'REQUEST_EXPIRED',
    mapping: r.mapping,
    key: null,
    message: r.status === 'fail' ? `${what} failed at Wooxy; its contacts were sent again` : `${what} expired unresolved: Wooxy no longer knew it; its contacts were sent again`,
    at: r.at,
    ageSeconds: r.age,
  };
}

export async function lastDeadLetter(ctx: StoreContext): Promise<StageErrorRow | null> {
  const { rows } = await sql<Row>`
    SELECT error_code AS code, mapping, source_key AS key, human_error AS message, last_seen AS at, EXTRACT(EPOCH FROM now() - last_seen)::float8 AS age
    FROM ${ctx.t.dead} ORDER BY last_seen DESC LIMIT 1`.execute(ctx.db);
  return stageError(rows[0]);
}

/** The source gaps of the last `hours`, newest first. */
export async function recentGaps(ctx: StoreContext, hours: number): Promise<StageErrorRow[]> {
  const { rows } = await sql<Row>`
    SELECT code, mapping, NULL::text AS key, message, at, EXTRACT(EPOCH FROM now() - at)::float8 AS age
    FROM ${events(ctx)} WHERE code IN (${sql.join(GAP_CODES.map((c) => sql`${c}`))}) AND at > now() - make_interval(hours => ${hours})
    ORDER BY id DESC LIMIT 10`.execute(ctx.db);
  return rows.map((r) => stageError(r)!);
}
