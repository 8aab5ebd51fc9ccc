import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';

/** Second key of the two-key advisory lock; the first is hashtext(schema). */
const OUTBOX_WRITERS = 0x57_43_01;

/**
 * The stream's writer and snapshot chunks take turns, one transaction at a time per connector schema (and
 * across processes: `wooxy-cdc snapshot` runs beside `wooxy-cdc run`). A snapshot chunk decides from the
 * stored state whether its rows are older or newer than what the stream wrote; taking turns keeps that
 * state still between the decision and the write, and two writers upserting the same contacts in different
 * orders can never deadlock. Held until the transaction ends.
 */
export async function takeWriterTurn(trx: Transaction<Database>, schema: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${schema}), ${OUTBOX_WRITERS})`.execute(trx);
}
