import type pg from 'pg';

/** Second key of the fence lock; the first is hashtext('wooxy-cdc-fence:' || slot). Must match fence() in 0005. */
export const FENCE_LOCK_KEY = 1464026116;

/**
 * Starts a term of leadership: waits until no transaction of an earlier epoch is in progress (they hold the
 * fence lock shared; this takes it exclusively), raises the slot's epoch and returns it. From the commit on,
 * every fenced transaction of an older epoch fails. Runs on the election's lock connection, which already
 * holds the leader lock, in its own short transaction.
 */
export async function beginTerm(client: Pick<pg.ClientBase, 'query'>, schema: string, slot: string, holder: string): Promise<string> {
  const leader = `"${schema.replace(/"/g, '""')}".leader`;
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('wooxy-cdc-fence:' || $1::text), $2::int)`, [slot, FENCE_LOCK_KEY]);
    const { rows } = await client.query<{ epoch: string }>(
      `INSERT INTO ${leader} AS l (slot, epoch, holder) VALUES ($1, 1, $2)
       ON CONFLICT (slot) DO UPDATE SET epoch = l.epoch + 1, holder = EXCLUDED.holder, elected_at = now()
       RETURNING epoch::text AS epoch`,
      [slot, holder],
    );
    await client.query('COMMIT');
    return rows[0]!.epoch;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
