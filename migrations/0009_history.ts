import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The contacts' request history (src/store/history.ts keeps the rules), for `wooxy-cdc inspect`: Wooxy forgets
 * a request's status after 7 days, and `requests` is pruned with it; this table keeps what each request meant
 * for each contact for `history.keepDays` (30 by default).
 *
 * history  one row per (request, contact), written when the answer is applied (or the request expires, or
 *          Wooxy refuses the contact at the call: request_id NULL): the operation, when it was sent and
 *          resolved, the outcome for this contact (success, retry, dead, expired, stray), Wooxy's code and
 *          humanError, the fallback it led to (hint) and the identifiers the call named the contact by. No
 *          payload: the identifiers are what an operator searches for, and rows stay small (the table grows
 *          with every contact sent).
 *          Insert-only, no primary key: each row is written once, by a statement that runs once per request
 *          (the request row is locked and a resolved one left alone).
 * history_contact  what inspect reads: one contact's rows, newest first.
 * history_resolved what pruning reads: the oldest rows first, so a bounded DELETE never scans the table. It grows
 *          at its right edge only (resolved_at is the time of the insert), the cheapest kind of btree insert.
 */
export function history(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE ${s}.history (
        mapping text NOT NULL,
        source_key text NOT NULL,
        request_id text,
        op text NOT NULL,
        sent_at timestamptz NOT NULL,
        resolved_at timestamptz NOT NULL DEFAULT now(),
        outcome text NOT NULL CHECK (outcome IN ('success', 'retry', 'dead', 'expired', 'stray')),
        code text,
        human_error text,
        hint text,
        ids jsonb
      )`.execute(db);
      await sql`CREATE INDEX history_contact ON ${s}.history (mapping, source_key, sent_at)`.execute(db);
      await sql`CREATE INDEX history_resolved ON ${s}.history (resolved_at)`.execute(db);
    },
  };
}
