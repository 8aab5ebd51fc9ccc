import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Dead letters that describe the present (src/store/dead-letters.ts keeps the rules):
 *
 * dead_letters.blocked_key, blocked_field, blocked_value
 *     an IDENTIFIER_TAKEN dead letter: the contact of the same mapping that holds one of this contact's
 *     identifiers, and which identifier (as this contact wants it). When Wooxy confirms a change of that
 *     contact after which its synced state no longer holds the identifier, the blocked contacts are queued
 *     again and their dead letters go. All three are set, or none.
 * dead_letters_blocked
 *     finds the contacts a confirmed change may release, by the contact that blocks them. Partial: only such
 *     dead letters are indexed, and dead_letters is written rarely, so it costs the hot tables nothing (an
 *     expression index on contact_state.synced would make every synced rewrite a non-HOT update instead).
 */
export function deadLetters(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${s}.dead_letters
        ADD COLUMN blocked_key text,
        ADD COLUMN blocked_field text CHECK (blocked_field IN ('userId', 'email', 'phoneNumber')),
        ADD COLUMN blocked_value text,
        ADD CONSTRAINT dead_letters_blocked_whole CHECK (num_nulls(blocked_key, blocked_field, blocked_value) IN (0, 3))`.execute(db);
      await sql`CREATE INDEX dead_letters_blocked ON ${s}.dead_letters (mapping, blocked_key) WHERE blocked_key IS NOT NULL`.execute(db);
    },
  };
}
