/**
 * Investigation aid: the WAL one history row costs, by how it is written (REQUESTS=200 of CONTACTS=100).
 *   answer   one INSERT per request at its answer, the final row (what src/store/history.ts does)
 *   both     an INSERT at the record of the call, then an UPDATE at the answer (a HOT update: the indexed
 *            columns do not change, and the table is given fillfactor 80 for room on its pages)
 *   no-prune as `answer`, without the index on resolved_at that pruning reads
 * Each variant runs on an empty table of its own; WAL is pg_current_wal_insert_lsn() before and after.
 */
import { createDb } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrator.js';
import { createBenchDb, startCluster, stopCluster } from '../lib/pg.js';

const REQUESTS = Number(process.env.REQUESTS ?? 200);
const CONTACTS = Number(process.env.CONTACTS ?? 100);
const cluster = await startCluster();
const db = await createBenchDb(cluster, 'historyw');
const h = createDb({ url: db.url, schema: 'wooxy_cdc' });
await migrate(h.db, 'wooxy_cdc');
await h.close();

const lsn = async () => (await db.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
const bytes = async (a: string, b: string) => Number((await db.query<{ n: string }>('SELECT $2::pg_lsn - $1::pg_lsn AS n', [a, b])).rows[0]!.n);
const rows = (r: number) =>
  JSON.stringify(
    Array.from({ length: CONTACTS }, (_, i) => {
      const k = String(r * CONTACTS + i + 1);
      return { m: 'users', k, op: 'add', ids: { userId: k, email: `user${k}@example.com` } };
    }),
  );
const requestId = (r: number) => `6b0d4b4c935b658e7a${String(r).padStart(6, '0')}`;

async function variant(name: string, setup: string, write: (r: number) => Promise<void>): Promise<void> {
  await db.query('TRUNCATE wooxy_cdc.history');
  await db.query(setup);
  await db.query('CHECKPOINT');
  const a = await lsn();
  for (let r = 0; r < REQUESTS; r++) await write(r);
  const b = await lsn();
  console.log(`${name.padEnd(9)} ${((await bytes(a, b)) / (REQUESTS * CONTACTS)).toFixed(1)} B of WAL per contact`);
}

const insertFinal = (r: number) =>
  db.query(
    `INSERT INTO wooxy_cdc.history (mapping, source_key, request_id, op, sent_at, outcome, ids)
     SELECT m, k, $2, op, now() - interval '2 seconds', 'success', ids FROM jsonb_to_recordset($1::jsonb) AS x(m text, k text, op text, ids jsonb)`,
    [rows(r), requestId(r)],
  );

await variant('answer', 'SELECT 1', async (r) => void (await insertFinal(r)));
await variant('both', `ALTER TABLE wooxy_cdc.history DROP CONSTRAINT IF EXISTS history_outcome_check, ALTER COLUMN outcome DROP NOT NULL, SET (fillfactor = 80)`, async (r) => {
  await db.query(
    `INSERT INTO wooxy_cdc.history (mapping, source_key, request_id, op, sent_at, resolved_at, ids)
     SELECT m, k, $2, op, now(), now(), ids FROM jsonb_to_recordset($1::jsonb) AS x(m text, k text, op text, ids jsonb)`,
    [rows(r), requestId(r)],
  );
  await db.query(`UPDATE wooxy_cdc.history SET outcome = 'success', resolved_at = now() WHERE request_id = $1`, [requestId(r)]);
});
await variant('no-prune', 'DROP INDEX wooxy_cdc.history_resolved', async (r) => void (await insertFinal(r)));
await db.close();
await stopCluster(cluster, 'historyw');
