import { sql, type RawBuilder } from 'kysely';
import type { DbHandle } from '../db/index.js';

/**
 * The operator's side of the dead-letter table: list, retry (back into the outbox from the contact's current
 * desired state), discard. A running connector's delivery picks retried contacts up on its next look.
 */
export interface DeadLetterFilter {
  mapping?: string;
  key?: string;
  code?: string;
}

export interface DeadLetter {
  mapping: string;
  key: string;
  op: string;
  code: string;
  message: string;
  attempts: number;
  firstSeen: string;
  lastSeen: string;
  payload: Record<string, unknown> | null;
}

export interface RetryOutcome {
  /** Dead letters removed. */
  retried: number;
  /** Contacts put back in the outbox. The others had nothing to send: a newer change is pending already, or no state is left. */
  queued: number;
}

function where(f: DeadLetterFilter): RawBuilder<unknown> {
  const conditions = [sql`true`];
  if (f.mapping !== undefined) conditions.push(sql`d.mapping = ${f.mapping}`);
  if (f.key !== undefined) conditions.push(sql`d.source_key = ${f.key}`);
  if (f.code !== undefined) conditions.push(sql`d.error_code = ${f.code}`);
  return sql.join(conditions, sql` AND `);
}

export async function listDeadLetters(handle: DbHandle, filter: DeadLetterFilter = {}, limit = 1000): Promise<DeadLetter[]> {
  const dead = sql.id(handle.schema, 'dead_letters');
  const { rows } = await sql<{ mapping: string; source_key: string; op: string; error_code: string; human_error: string; attempts: number; first_seen: Date; last_seen: Date; payload: Record<string, unknown> | null }>`
    SELECT mapping, source_key, op, error_code, human_error, attempts, first_seen, last_seen, payload
    FROM ${dead} d WHERE ${where(filter)} ORDER BY last_seen DESC, mapping, source_key LIMIT ${limit}`.execute(handle.db);
  return rows.map((r) => ({
    mapping: r.mapping,
    key: r.source_key,
    op: r.op,
    code: r.error_code,
    message: r.human_error,
    attempts: r.attempts,
    firstSeen: new Date(r.first_seen).toISOString(),
    lastSeen: new Date(r.last_seen).toISOString(),
    payload: r.payload,
  }));
}

/**
 * Deletes the matching dead letters and queues each contact's current desired state (contact_state.desired,
 * at its LSN) as a pending outbox entry, in one transaction. Where a pending entry exists already it is newer
 * and is kept. Delivery then decides the call from desired vs. synced, as for any change.
 */
export async function retryDeadLetters(handle: DbHandle, filter: DeadLetterFilter): Promise<RetryOutcome> {
  const t = { dead: sql.id(handle.schema, 'dead_letters'), state: sql.id(handle.schema, 'contact_state'), outbox: sql.id(handle.schema, 'outbox') };
  const { rows } = await sql<{ retried: number; queued: number }>`
    WITH picked AS (
      DELETE FROM ${t.dead} d WHERE ${where(filter)} RETURNING d.mapping, d.source_key
    ), queued AS (
      INSERT INTO ${t.outbox} (mapping, source_key, state, payload, lsn)
      SELECT s.mapping, s.source_key, 'pending', s.desired, s.lsn
      FROM ${t.state} s JOIN picked p ON p.mapping = s.mapping AND p.source_key = s.source_key
      ON CONFLICT (mapping, source_key, state) DO NOTHING
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM picked)::int AS retried, (SELECT count(*) FROM queued)::int AS queued`.execute(handle.db);
  return rows[0] ?? { retried: 0, queued: 0 };
}

export async function discardDeadLetters(handle: DbHandle, filter: DeadLetterFilter): Promise<number> {
  const r = await sql`DELETE FROM ${sql.id(handle.schema, 'dead_letters')} d WHERE ${where(filter)}`.execute(handle.db);
  return Number(r.numAffectedRows ?? 0);
}
