import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Delivery's bookkeeping on outbox entries:
 * op_hint     what the last answer implies for the next send: 'update' after ERR_CONTACT_EXISTS on add,
 *             'add' after ERR_CONTACT_NOT_EXISTS on update, 'replace' (remove, then add) to break a cycle of
 *             identifiers moving between contacts.
 * maybe_ids   identifiers of a payload that was handed to Wooxy without its answer being recorded (a crash
 *             between the call and our commit): Wooxy may hold that contact even though `synced` says not.
 * requests.warned  the retention warning was logged once for this request.
 */
export function delivery(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${s}.outbox ADD COLUMN op_hint text CHECK (op_hint IN ('add', 'update', 'replace'))`.execute(db);
      await sql`ALTER TABLE ${s}.outbox ADD COLUMN maybe_ids jsonb`.execute(db);
      await sql`ALTER TABLE ${s}.requests ADD COLUMN warned boolean NOT NULL DEFAULT false`.execute(db);
      await sql`CREATE INDEX requests_checked ON ${s}.requests (checked_at NULLS FIRST) WHERE status = 'new'`.execute(db);
    },
  };
}
