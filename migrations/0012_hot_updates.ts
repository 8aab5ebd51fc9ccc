import { sql, type Kysely, type Migration } from 'kysely';

/**
 * More room on every page for the new versions of its rows (0004 gave some). An outbox entry is written three
 * times before it leaves (captured, claimed, marked) and a contact state twice (captured, synced); with
 * wal_level = logical each update logs its whole new row. An update that finds no room on the page moves the
 * row to another one: it then also writes a row-lock record and an entry in every index (measured by the wal
 * bench: a non-HOT update of an outbox row costs ~200 B more WAL than a HOT one). At 70 %, an outbox page of
 * ~20 entries had room for about 8 new versions; at 40 % it has room for the two each entry needs. The tables
 * are bounded by the distinct contacts in flight, so the space is cheap. Applies to pages written from now on.
 */
export function hotUpdates(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${s}.outbox SET (fillfactor = 40)`.execute(db);
      await sql`ALTER TABLE ${s}.contact_state SET (fillfactor = 50)`.execute(db);
    },
  };
}
