import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Delivery integrity under failover and crashes (src/store/ states the rules these columns keep):
 *
 * leader               one row per slot: the leader epoch, raised by every election (src/store/fence.ts).
 * fence(slot, epoch)   called first in every transaction of a leader's pipeline: it takes a shared advisory
 *                      lock that an election takes exclusively while it raises the epoch, then fails with
 *                      SQLSTATE WX001 unless `epoch` is still the current one. An election therefore waits for
 *                      the old leader's transactions in progress, and every later one of them fails closed.
 * outbox.claim_epoch, claimed_by, claimed_until
 *                      a pending entry claimed for a call: the claimer's epoch and name, and the lease's end.
 *                      Nobody else claims it before the lease ends; a claim of an older epoch whose call never
 *                      started (batch_id unset) is free at once, since its claimer can no longer mark it.
 * outbox.maybe_removed a remove of this contact was handed to Wooxy and its answer is not recorded: Wooxy may no
 *                      longer hold the contact that `synced` describes.
 * requests.epoch       the epoch of the leader that sent it.
 * requests.stray       contacts of an accepted request that could not be recorded as the contact's in-flight
 *                      entry (another request held it: two senders overlapped). When it resolves, their current
 *                      state is sent again, so a late-applied call never has the last word.
 */
export function integrity(schema: string): Migration {
  const s = sql.id(schema);
  // The schema name passed the configuration's identifier rule; quoted for the function body all the same.
  const qs = `"${schema.replace(/"/g, '""')}"`;
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE ${s}.leader (
        slot text PRIMARY KEY,
        epoch bigint NOT NULL,
        holder text NOT NULL,
        elected_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
      await sql
        .raw(
          `CREATE FUNCTION ${qs}.fence(p_slot text, p_epoch bigint) RETURNS void LANGUAGE plpgsql VOLATILE AS $fence$
DECLARE
  current_epoch bigint;
BEGIN
  PERFORM pg_advisory_xact_lock_shared(hashtext('wooxy-cdc-fence:' || p_slot), 1464026116);
  SELECT epoch INTO current_epoch FROM ${qs}.leader WHERE slot = p_slot;
  IF current_epoch IS DISTINCT FROM p_epoch THEN
    RAISE EXCEPTION 'leader epoch % of slot % is over (the current epoch is %): another instance leads', p_epoch, p_slot, current_epoch
      USING ERRCODE = 'WX001';
  END IF;
END
$fence$`,
        )
        .execute(db);
      await sql`ALTER TABLE ${s}.outbox
        ADD COLUMN claim_epoch bigint,
        ADD COLUMN claimed_by text,
        ADD COLUMN claimed_until timestamptz,
        ADD COLUMN maybe_removed boolean NOT NULL DEFAULT false`.execute(db);
      await sql`ALTER TABLE ${s}.requests ADD COLUMN epoch bigint, ADD COLUMN stray jsonb`.execute(db);
    },
  };
}
