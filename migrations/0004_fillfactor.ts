import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Room on every page for a new version of its rows. Delivery marks each pending entry before its call
 * (maybe_ids) and reconciliation rewrites each contact's synced payload: neither changes an indexed column,
 * so with free space on the page Postgres updates them in place of the page (HOT), without new index entries
 * or dead ones for the next claim to skip. Applies to pages written from now on.
 */
export function fillfactor(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${s}.outbox SET (fillfactor = 70)`.execute(db);
      await sql`ALTER TABLE ${s}.contact_state SET (fillfactor = 80)`.execute(db);
    },
  };
}
