import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The connector's own tables, all in its schema (sql.id(schema)).
 *
 * contact_state  one row per (mapping, source key): the mapped columns last seen (to merge unchanged TOASTed
 *                values and to address deletes that carry only the key), the payload the row implies now,
 *                and the payload Wooxy holds as far as we know (what an identifier change is addressed by).
 * outbox         at most one 'pending' and one 'inflight' entry per contact, so a backlog is bounded by
 *                distinct contacts and a contact never has two unresolved requests.
 * requests       every requestId Wooxy returned, until it resolves or expires.
 * replication_state  the last LSN whose changes are durable here: written in the same transaction as the
 *                outbox rows, acknowledged to the slot only after that transaction commits.
 * dead_letters   contacts that cannot be synced, with the reason, never blocking the others.
 */
export function initial(schema: string): Migration {
  const s = sql.id(schema);
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE ${s}.replication_state (
        slot text PRIMARY KEY,
        durable_lsn pg_lsn NOT NULL DEFAULT '0/0',
        updated_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);

      await sql`CREATE TABLE ${s}.contact_state (
        mapping text NOT NULL,
        source_key text NOT NULL,
        row jsonb,
        desired jsonb,
        synced jsonb,
        lsn pg_lsn NOT NULL DEFAULT '0/0',
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (mapping, source_key)
      )`.execute(db);

      await sql`CREATE TABLE ${s}.outbox (
        mapping text NOT NULL,
        source_key text NOT NULL,
        state text NOT NULL CHECK (state IN ('pending', 'inflight')),
        payload jsonb,
        lsn pg_lsn NOT NULL DEFAULT '0/0',
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        request_id text,
        batch_id text,
        sent_op text,
        sent_at timestamptz,
        last_error text,
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (mapping, source_key, state)
      )`.execute(db);
      await sql`CREATE INDEX outbox_ready ON ${s}.outbox (next_attempt_at) WHERE state = 'pending'`.execute(db);
      await sql`CREATE INDEX outbox_request ON ${s}.outbox (request_id) WHERE request_id IS NOT NULL`.execute(db);

      await sql`CREATE TABLE ${s}.requests (
        request_id text PRIMARY KEY,
        mapping text NOT NULL,
        list_id text NOT NULL,
        op text NOT NULL,
        batch_id text NOT NULL,
        contact_count integer NOT NULL,
        status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'done', 'fail', 'expired')),
        sent_at timestamptz NOT NULL DEFAULT now(),
        checked_at timestamptz,
        resolved_at timestamptz,
        resolved_via text
      )`.execute(db);
      await sql`CREATE INDEX requests_unresolved ON ${s}.requests (sent_at) WHERE status = 'new'`.execute(db);

      await sql`CREATE TABLE ${s}.dead_letters (
        mapping text NOT NULL,
        source_key text NOT NULL,
        op text NOT NULL,
        payload jsonb,
        error_code text NOT NULL,
        human_error text NOT NULL,
        attempts integer NOT NULL DEFAULT 1,
        first_seen timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (mapping, source_key)
      )`.execute(db);
    },
  };
}
