import { sql } from 'kysely';
import type { StoreContext } from './context.js';
import { recordEvent } from './lifecycle.js';
import { transaction, type Fence } from './tx.js';

/**
 * Delivery pauses, as other processes see them. A pause lives in the leader's memory (MappingHealth decides
 * it, and a new term starts without one); `status` runs elsewhere, so each pause and its end are also
 * written to the events table, where they stay as the delivery stage's history. The rules:
 *
 * - A pause is recorded when it starts or its cause changes (DELIVERY_PAUSED, the cause as the message), and its
 *   end when a call goes through again (DELIVERY_RESUMED). Both are rare: one row each, never per retry.
 * - The writes are fenced with the leader's term: a deposed leader's late write fails closed, so an event
 *   written after an election is the current leader's.
 * - A mapping is paused now when its latest pause event since the current term began (leader.elected_at) is
 *   DELIVERY_PAUSED. A pause of an earlier term ended with that term: the new leader's MappingHealth has none,
 *   and pauses again, recording it, if the cause is still there.
 */
export const PauseEvents = { paused: 'DELIVERY_PAUSED', resumed: 'DELIVERY_RESUMED' } as const;

export interface PauseChange {
  mapping: string;
  paused: boolean;
  /** "CODE: message": why it pauses, or why it had paused (on resume). */
  cause: string;
}

export async function recordPauseChange(ctx: StoreContext, fence: Fence, change: PauseChange): Promise<void> {
  await transaction(
    ctx,
    fence,
    (trx) =>
      recordEvent(ctx, trx, change.paused
        ? { level: 'error', code: PauseEvents.paused, mapping: change.mapping, message: change.cause }
        : { level: 'info', code: PauseEvents.resumed, mapping: change.mapping, message: `resumed after: ${change.cause}` }),
    { attempts: 5, connection: true },
  );
}

export interface CurrentPause {
  mapping: string;
  cause: string;
  since: Date;
  ageSeconds: number;
}

/** The mappings paused now by the slot's current (or last) term, per the rule above. */
export async function currentPauses(ctx: StoreContext, slot: string): Promise<CurrentPause[]> {
  const { rows } = await sql<{ mapping: string; code: string; message: string; at: Date; age: number }>`
    SELECT DISTINCT ON (e.mapping) e.mapping, e.code, e.message, e.at, EXTRACT(EPOCH FROM now() - e.at)::float8 AS age
    FROM ${sql.id(ctx.schema, 'events')} e
    WHERE e.code IN (${PauseEvents.paused}, ${PauseEvents.resumed}) AND e.mapping IS NOT NULL
      AND e.at >= COALESCE((SELECT elected_at FROM ${ctx.t.leader} WHERE slot = ${slot}), '-infinity')
    ORDER BY e.mapping, e.id DESC`.execute(ctx.db);
  return rows.filter((r) => r.code === PauseEvents.paused).map((r) => ({ mapping: r.mapping, cause: r.message, since: r.at, ageSeconds: r.age }));
}
