/**
 * Where the connector's WAL goes, per relation and record kind, for one backlog of new users: the source
 * insert itself, the capture (API down), then delivery and reconciliation (API back). pg_walinspect reads
 * the records between two LSNs; relations are named by their filenodes. A profiling aid for the WAL figure
 * of `npm run bench` (bench/scenarios/wal.ts): `npx tsx bench/investigate/wal-breakdown.ts [contacts]`.
 */
import { startChild, stopChild, writeChildConfig } from '../lib/connector-process.js';
import { LIST_ID, startBenchEmulator } from '../lib/emulator.js';
import { createBenchDb, dropSlots, insertUsersSql, outboxState, startCluster, stopCluster, type BenchDb } from '../lib/pg.js';
import { until } from '../lib/stats.js';

const contacts = Number(process.argv[2] ?? 20_000);
const lsn = async (db: BenchDb) => (await db.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;

async function breakdown(db: BenchDb, from: string, to: string, label: string): Promise<void> {
  await until(async () => (await db.query<{ ok: boolean }>('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS ok', [to])).rows[0]!.ok, { message: 'flushed' });
  const { rows } = await db.query<{ rel: string | null; kind: string; n: string; bytes: string; fpi: string }>(
    `WITH r AS (
       SELECT resource_manager || '/' || split_part(record_type, ' ', 1) AS kind, record_length, fpi_length,
              substring(block_ref from 'rel [0-9]+/[0-9]+/([0-9]+)') AS node
       FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn))
     SELECT coalesce(c.relname, r.node, '-') AS rel, kind, count(*) AS n, sum(record_length) AS bytes, sum(fpi_length) AS fpi
     FROM r LEFT JOIN pg_class c ON pg_relation_filenode(c.oid)::text = r.node
     GROUP BY 1, 2 ORDER BY sum(record_length) DESC LIMIT 25`,
    [from, to],
  );
  const total = rows.reduce((n, r) => n + Number(r.bytes), 0);
  process.stdout.write(`\n== ${label}: ${(Number((await db.query<{ b: string }>('SELECT $2::pg_lsn - $1::pg_lsn AS b', [from, to])).rows[0]!.b) / contacts).toFixed(0)} B/contact (records listed: ${(total / contacts).toFixed(0)})\n`);
  for (const r of rows) process.stdout.write(`  ${(Number(r.bytes) / contacts).toFixed(1).padStart(7)} B  ${r.n.padStart(8)}×  ${r.kind.padEnd(22)} ${r.rel}\n`);
}

const cluster = await startCluster();
const db = await createBenchDb(cluster, 'walbreak');
await db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
const emulator = await startBenchEmulator({ latencyMs: 20, authError: 'invalid' });
const child = startChild(await writeChildConfig({ dbUrl: db.url, emulatorUrl: emulator.url, delivery: { pauseRetryMs: 200 }, snapshot: { onStart: false } }));
try {
  await child.streaming();
  const a = await lsn(db);
  await db.query(insertUsersSql(1, contacts));
  const b = await lsn(db);
  await until(async () => (await outboxState(db)).pending === contacts, { timeoutMs: 600_000, intervalMs: 200, message: 'captured' });
  const c = await lsn(db);
  emulator.setFaults({ authError: null });
  await until(
    async () => {
      const s = await outboxState(db);
      return s.pending + s.inflight + s.unresolved === 0 && (emulator.contacts(LIST_ID)?.length ?? 0) === contacts;
    },
    { timeoutMs: 600_000, intervalMs: 100, message: 'delivered' },
  );
  const d = await lsn(db);
  await breakdown(db, a, b, 'source insert');
  await breakdown(db, b, c, 'capture');
  await breakdown(db, c, d, 'delivery and reconciliation');
} finally {
  await stopChild(child);
  await emulator.close();
  await dropSlots(db);
  await db.close();
  await stopCluster(cluster, 'walbreak');
}
