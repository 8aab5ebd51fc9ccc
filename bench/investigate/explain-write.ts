/**
 * Investigation aid: where one outbox write of N new contacts spends its time in Postgres (EXPLAIN ANALYZE,
 * WAL bytes), and variants of it (N=5000 SHOW=1).
 */
import pg from 'pg';
import { createDb } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrator.js';
import { createBenchDb, startCluster, stopCluster } from '../lib/pg.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'CTE Name'?: string;
  'Actual Total Time': number;
  'Actual Rows': number;
  Plans?: PlanNode[];
}

const N = Number(process.env.N ?? 5000);
const cluster = await startCluster();
const db = await createBenchDb(cluster, 'explainw');
const h = createDb({ url: db.url, schema: 'wooxy_cdc' });
await migrate(h.db, 'wooxy_cdc');
await h.close();
const records = Array.from({ length: N }, (_, i) => {
  const id = String(i + 1);
  const row = { id, email: `user${id}@example.com`, first_name: `First${id}`, last_name: `Last${i % 1000}` };
  return { m: 'users', k: id, r: row, d: { userId: id, email: row.email, firstName: row.first_name, lastName: row.last_name }, kd: false, l: '0/1000000' };
});
const doc = JSON.stringify(records);
console.log(`batch ${N}, JSON ${(doc.length / 1e6).toFixed(2)} MB`);
const full = `
  WITH x AS (
    SELECT j.m, j.k, NULLIF(j.r, 'null') AS r, NULLIF(j.d, 'null') AS d, j.kd, j.l,
      (SELECT s.desired FROM wooxy_cdc.contact_state s WHERE s.mapping = j.m AND s.source_key = j.k) AS old
    FROM jsonb_to_recordset($1::jsonb) AS j(m text, k text, r jsonb, d jsonb, kd boolean, l pg_lsn)
  ), state AS (
    INSERT INTO wooxy_cdc.contact_state AS s (mapping, source_key, row, desired, lsn)
    SELECT m, k, r, d, l FROM x WHERE NOT kd ORDER BY m, k
    ON CONFLICT (mapping, source_key) DO UPDATE SET row = EXCLUDED.row, desired = EXCLUDED.desired, lsn = EXCLUDED.lsn, updated_at = now()
  ), queued AS (
    INSERT INTO wooxy_cdc.outbox (mapping, source_key, state, payload, lsn)
    SELECT m, k, 'pending', d, l FROM x WHERE NOT kd AND old IS DISTINCT FROM d ORDER BY m, k
    ON CONFLICT (mapping, source_key, state) DO UPDATE SET payload = EXCLUDED.payload, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()
    RETURNING 1
  )
  SELECT count(*)::int AS n FROM queued`;
const variants: Record<string, string> = {
  'parse only (jsonb_to_recordset)': `SELECT count(*) FROM jsonb_to_recordset($1::jsonb) AS j(m text, k text, r jsonb, d jsonb, kd boolean, l pg_lsn)`,
  'parse only (json_to_recordset)': `SELECT count(*) FROM json_to_recordset($1::json) AS j(m text, k text, r jsonb, d jsonb, kd boolean, l pg_lsn)`,
  'full statement': full,
  'full, json_to_recordset': full.replace('jsonb_to_recordset($1::jsonb)', 'json_to_recordset($1::json)'),
  'no row column': full.replace('(mapping, source_key, row, desired, lsn)\n    SELECT m, k, r, d, l', '(mapping, source_key, desired, lsn)\n    SELECT m, k, d, l'),
};
const client = new pg.Client(db.url);
await client.connect();
for (const round of [1, 2]) {
  for (const [name, q] of Object.entries(variants)) {
    await client.query('BEGIN');
    const t0 = performance.now();
    const r = await client.query(`EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) ${q}`, [doc]);
    const ms = performance.now() - t0;
    await client.query('ROLLBACK');
    const plan = (r.rows[0] as { 'QUERY PLAN': Array<{ 'Execution Time': number; Plan: { 'WAL Bytes'?: number } }> })['QUERY PLAN'][0]!;
    if (process.env.SHOW && name === 'full statement' && round === 2) {
      const walk = (n: PlanNode, d = 0): void => {
        console.log(`${'  '.repeat(d)}${n['Node Type']} ${n['Relation Name'] ?? n['CTE Name'] ?? ''} actual ${n['Actual Total Time']} ms rows ${n['Actual Rows']}`);
        for (const c of n.Plans ?? []) walk(c, d + 1);
      };
      walk(plan.Plan as PlanNode);
    }
    console.log(`round ${round} ${name.padEnd(34)} exec ${plan['Execution Time'].toFixed(0).padStart(5)} ms, round trip ${ms.toFixed(0).padStart(5)} ms, WAL ${((plan.Plan['WAL Bytes'] ?? 0) / 1e6).toFixed(2)} MB`);
  }
}
await client.end();
await db.close();
await stopCluster(cluster, 'explainw');
