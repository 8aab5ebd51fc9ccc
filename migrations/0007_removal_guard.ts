import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The mass-removal guard (src/store/guard.ts states the rules these keep):
 *
 * removal_guard      one row per mapping the guard has judged: held_since is set while the mapping's removals are
 *                    held (with the count, the synced contacts they were weighed against, and the likely cause);
 *                    approved_lsn: removals at or below it were decided by an operator and are never held again;
 *                    synced_count, counted_at: the mapping's synced contacts, counted at most once a minute.
 * removal_decisions  every approve and discard: who, when, how many, and the hold it ended.
 * outbox_removals    pending removals by mapping: the guard counts a mapping's removals, never the whole backlog.
 *                    Only removal entries are in it, and a delivery mark changes none of its columns, so the mark
 *                    stays a HOT update.
 */
export function removalGuard(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE ${s}.removal_guard (
        mapping text PRIMARY KEY,
        held_since timestamptz,
        held_count integer NOT NULL DEFAULT 0,
        held_synced bigint NOT NULL DEFAULT 0,
        cause text,
        approved_lsn pg_lsn NOT NULL DEFAULT '0/0',
        synced_count bigint,
        counted_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
      await sql`CREATE TABLE ${s}.removal_decisions (
        id bigserial PRIMARY KEY,
        mapping text NOT NULL,
        decision text NOT NULL CHECK (decision IN ('approve', 'discard')),
        contacts integer NOT NULL,
        held_since timestamptz,
        cause text,
        decided_by text NOT NULL,
        decided_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
      await sql`CREATE INDEX removal_decisions_latest ON ${s}.removal_decisions (mapping, decided_at DESC)`.execute(db);
      await sql`CREATE INDEX outbox_removals ON ${s}.outbox (mapping, lsn) WHERE state = 'pending' AND payload IS NULL`.execute(db);
    },
  };
}
