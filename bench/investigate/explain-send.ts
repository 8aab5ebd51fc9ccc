/**
 * Investigation aid: EXPLAIN ANALYZE of the statements delivery runs around each call (mark maybe_ids, lock
 * and record the sent batch) on a captured backlog (ROWS=20000), with and without fresh statistics.
 */
import { parseConfig } from '../../src/config/loader.js';
import { Connector } from '../../src/connector.js';
import { createLogger } from '../../src/observability/logger.js';
import { createBenchDb, insertUsersSql, outboxState, startCluster, USERS_MAPPING } from '../lib/pg.js';
import { until } from '../lib/stats.js';

const ROWS = Number(process.env.ROWS ?? 20000);
const cluster = await startCluster();
const db = await createBenchDb(cluster, 'explain_send');
const config = parseConfig({ postgres: { url: db.url }, wooxy: { accessToken: 'x', baseUrl: 'http://127.0.0.1:9/v3' }, http: { port: 0 }, snapshot: { onStart: false }, mappings: [USERS_MAPPING] }, {});
const c = new Connector({ config, log: createLogger({ level: 'warn', pretty: false }), captureOnly: true });
await c.start();
await until(() => c.replication?.isStreaming === true);
await db.query(insertUsersSql(1, ROWS));
await until(async () => (await outboxState(db)).pending === ROWS, { timeoutMs: 300000 });
await c.stop();
if (process.env.ANALYZE) await db.query('ANALYZE');
const keys = Array.from({ length: 100 }, (_, i) => String(i + 5000));
const marks = JSON.stringify(keys.map((k) => ({ m: 'users', k, ids: { userId: k } })));
const show = async (label: string, q: string, v: unknown[]) => {
  const r = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${q}`, v);
  console.log(`--- ${label}\n${r.rows.map((x) => x['QUERY PLAN']).join('\n')}`);
};
await db.query('BEGIN');
await show('mark', `WITH locked AS (
        SELECT o.mapping, o.source_key, x.ids FROM wooxy_cdc.outbox o JOIN jsonb_to_recordset($1::jsonb) AS x(m text, k text, ids jsonb)
          ON o.mapping = x.m AND o.source_key = x.k
        WHERE o.state = 'pending' AND x.ids IS NOT NULL ORDER BY o.mapping, o.source_key FOR UPDATE OF o)
      UPDATE wooxy_cdc.outbox o SET maybe_ids = COALESCE(o.maybe_ids, '{}'::jsonb) || l.ids
      FROM locked l WHERE o.state = 'pending' AND o.mapping = l.mapping AND o.source_key = l.source_key`, [marks]);
await show('lock', `SELECT 1 FROM wooxy_cdc.outbox o JOIN jsonb_to_recordset($1::jsonb) AS x(m text, k text) ON o.mapping = x.m AND o.source_key = x.k
        WHERE o.state = 'pending' ORDER BY o.mapping, o.source_key FOR UPDATE OF o`, [marks]);
const rec = JSON.stringify(keys.map((k) => ({ m: 'users', k, p: { userId: k }, ids: { userId: k }, l: '0/1', a: 0, keep: false })));
await show('record', `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(m text, k text, p jsonb, ids jsonb, l pg_lsn, a int, keep boolean)),
        moved AS (
          INSERT INTO wooxy_cdc.outbox (mapping, source_key, state, payload, lsn, attempts, request_id, batch_id, sent_op, sent_at, maybe_ids)
          SELECT m, k, 'inflight', NULLIF(p, 'null'), l, a, 'r1', gen_random_uuid(), 'add', now(), ids FROM x
        ),
        gone AS (
          DELETE FROM wooxy_cdc.outbox o USING x WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND o.lsn = x.l AND NOT x.keep
        )
        UPDATE wooxy_cdc.outbox o SET op_hint = 'add' FROM x WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND x.keep`, [rec]);
await db.query('ROLLBACK');
await db.close();
await cluster.stop('immediate');
