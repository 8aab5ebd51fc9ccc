import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The lifecycle of mappings and of the source (src/lifecycle/, src/store/lifecycle.ts):
 *
 * mappings           one row per mapping the connector has run: the fingerprint of its effective definition
 *                    (a changed one re-syncs the mapping by itself), the list it synced to, the source table's
 *                    oid (a dropped and re-created table is noticed), and where and why it stopped, when it
 *                    did (a schema change, a dropped table): a restart remembers the stop and reconciles it.
 * events             what happened to the source and the mappings (a slot lost and re-created, a mapping
 *                    stopped, resumed, changed, a reconciliation started and ended), for status and the log.
 * snapshot_progress  .reconcile: this snapshot also removes the contacts whose rows are gone (a sweep of the
 *                    contact states after the rows); .reason: why it runs; .phase: rows or sweep;
 *                    .sweep_cursor: the last contact key the sweep checked.
 */
export function lifecycle(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE ${s}.mappings (
        name text PRIMARY KEY,
        fingerprint text NOT NULL,
        definition jsonb NOT NULL,
        list_id text NOT NULL,
        table_oid bigint,
        stopped_code text,
        stopped_reason text,
        stopped_lsn pg_lsn,
        stopped_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
      await sql`CREATE TABLE ${s}.events (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        level text NOT NULL,
        code text NOT NULL,
        mapping text,
        message text NOT NULL
      )`.execute(db);
      await sql`ALTER TABLE ${s}.snapshot_progress
        ADD COLUMN reconcile boolean NOT NULL DEFAULT false,
        ADD COLUMN reason text,
        ADD COLUMN phase text NOT NULL DEFAULT 'rows' CHECK (phase IN ('rows', 'sweep')),
        ADD COLUMN sweep_cursor text,
        ADD COLUMN removed bigint NOT NULL DEFAULT 0`.execute(db);
    },
  };
}
