/**
 * Investigation aid: EXPLAIN ANALYZE of delivery's claim on a captured backlog (ROWS=100000), with and without
 * contacts being sent: the plans behind the claim fix in src/delivery/sender.ts.
 */
import { parseConfig } from '../../src/config/loader.js';
import { Connector } from '../../src/connector.js';
import { createLogger } from '../../src/observability/logger.js';
import { createBenchDb, insertUsersSql, outboxState, startCluster, USERS_MAPPING } from '../lib/pg.js';
import { until } from '../lib/stats.js';

const cluster = await startCluster();
const db = await createBenchDb(cluster, 'explain');
const config = parseConfig({ postgres: { url: db.url }, wooxy: { accessToken: 'x', baseUrl: 'http://127.0.0.1:9/v3' }, http: { port: 0 }, mappings: [USERS_MAPPING] }, {});
const c = new Connector({ config, log: createLogger({ level: 'warn', pretty: false }), captureOnly: true });
await c.start();
await until(() => c.replication?.isStreaming === true);
await db.query(insertUsersSql(1, Number(process.env.ROWS ?? 20000)));
await until(async () => (await outboxState(db)).pending === Number(process.env.ROWS ?? 20000), { timeoutMs: 300000 });
await c.stop();
await db.query('ANALYZE');
const busy = Array.from({ length: 900 }, (_, i) => String(i + 1));
const claim = `EXPLAIN (ANALYZE, BUFFERS) SELECT o.mapping, o.source_key, o.payload, s.synced, o.maybe_ids, o.op_hint, o.lsn::text AS lsn, o.attempts
      FROM wooxy_cdc.outbox o JOIN wooxy_cdc.contact_state s ON s.mapping = o.mapping AND s.source_key = o.source_key
      WHERE o.state = 'pending' AND o.next_attempt_at <= now()
        AND o.lsn <= COALESCE((SELECT durable_lsn FROM wooxy_cdc.replication_state WHERE slot = 'wooxy_cdc'), '0/0')
        AND NOT EXISTS (SELECT 1 FROM wooxy_cdc.outbox i WHERE i.mapping = o.mapping AND i.source_key = o.source_key AND i.state = 'inflight' OFFSET 0)
        AND (o.mapping, o.source_key) NOT IN (SELECT m, k FROM unnest($1::text[], $2::text[]) AS b(m, k))
      ORDER BY o.next_attempt_at
      LIMIT $3`;
for (const [label, b, limit] of [['empty busy, 1000', [], 1000], ['900 busy, 100', busy, 100]] as const) {
  const r = await db.query<{ 'QUERY PLAN': string }>(claim, [b.map(() => 'users'), b, limit]);
  console.log(`--- claim ${label}\n${r.rows.map((x) => x['QUERY PLAN']).join('\n')}`);
}
const marks = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ m: 'users', k: String(i + 5000), ids: { userId: String(i + 5000) } })));
const r = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) UPDATE wooxy_cdc.outbox o SET maybe_ids = COALESCE(o.maybe_ids, '{}'::jsonb) || x.ids
      FROM jsonb_to_recordset($1::jsonb) AS x(m text, k text, ids jsonb)
      WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND x.ids IS NOT NULL`, [marks]);
console.log(`--- maybe_ids\n${r.rows.map((x) => x['QUERY PLAN']).join('\n')}`);
await db.close();
await cluster.stop('immediate');
