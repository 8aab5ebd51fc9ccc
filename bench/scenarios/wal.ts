import pg from 'pg';
import type { LocalCluster } from '../../src/db/local-cluster.js';
import { startChild, stopChild, writeChildConfig } from '../lib/connector-process.js';
import { LIST_ID, startBenchEmulator } from '../lib/emulator.js';
import { clusterCpu, cpuDelta, fmt, type Figure, type ScenarioContext } from '../lib/figure.js';
import { adminQuery, createBenchDb, dropSlots, insertUsersSql, startCluster, stopCluster, type BenchDb } from '../lib/pg.js';
import { round, until } from '../lib/stats.js';

type Placement = 'source' | 'apart';
type Workload = 'insert' | 'update';

interface Phase {
  /** WAL bytes written to the source server during the phase. */
  sourceWal: number;
  /** WAL bytes written to the state's server (apart only; with the state in the source it is sourceWal). */
  stateWal: number | null;
  /** CPU seconds of the Postgres servers (source, and the state's when apart) by kind of process. */
  cpu: Record<string, number>;
  seconds: number;
}

interface WorkloadRun {
  placement: Placement;
  workload: Workload;
  changes: number;
  /** WAL of the workload's own transaction on the source. */
  changeWal: number;
  capture: Phase;
  delivery: Phase;
  /** The source server's WAL after the change, by relation and record kind, largest first. */
  sourceRecords: Array<{ rel: string; kind: string; records: number; bytesPerChange: number }>;
}

/** Record kinds the source writes whatever runs beside it, and the heartbeats: a logical message and its commit. */
const HEARTBEAT_KINDS = new Set(['LogicalMessage', 'Transaction', 'Standby', 'XLOG']);

/**
 * Issue 15's cost on the product database: the WAL the connector writes to the source per captured change,
 * against the WAL of the change itself, for an insert workload and an update workload, and the Postgres CPU
 * per durable change and per delivered contact. Each workload is one transaction over `contacts` users,
 * captured while the API refuses every call (so capture and delivery are measured apart), then delivered and
 * reconciled with the API back at 20 ms a call. Two placements: the connector's state in the source database
 * (the default), and in another server (postgres.stateUrl) — there the source should see heartbeats only.
 * A CHECKPOINT precedes each workload, so the first writes of each page pay their full-page image, as they
 * do after every checkpoint in production. Autovacuum is off for `users` (its work is the application's, not
 * the connector's); it stays on for the connector's tables.
 */
export async function wal(ctx: ScenarioContext): Promise<Figure[]> {
  const contacts = ctx.quick ? 10_000 : 50_000;
  const runs: WorkloadRun[] = [];
  for (const placement of ['source', 'apart'] as const) {
    runs.push(...(await measurePlacement(placement, contacts, ctx)));
  }
  const find = (p: Placement, w: Workload) => runs.find((r) => r.placement === p && r.workload === w)!;
  const figures: Figure[] = [];
  for (const w of ['insert', 'update'] as const) {
    const r = find('source', w);
    const connector = r.capture.sourceWal + r.delivery.sourceWal;
    const ratio = connector / r.changeWal;
    figures.push({
      id: `wal-${w}`,
      title: `Connector WAL on the source per ${w === 'insert' ? 'inserted' : 'updated'} row (state in the source)`,
      measured: `${fmt(connector / r.changes)} B/change (capture ${fmt(r.capture.sourceWal / r.changes)}, delivery ${fmt(r.delivery.sourceWal / r.changes)})`,
      against: `the ${w} itself ${fmt(r.changeWal / r.changes)} B/row`,
      ratio: round(ratio, 2),
      target: '≤ 1×',
      score: 1 / ratio,
      pass: ratio <= 1,
      details: { ...r, sourceRecords: r.sourceRecords.slice(0, 14) },
    });
  }
  const apart = (['insert', 'update'] as const).map((w) => find('apart', w));
  const changes = apart.reduce((n, r) => n + r.changes, 0);
  const changeWal = apart.reduce((n, r) => n + r.changeWal, 0);
  const onSource = apart.reduce((n, r) => n + r.capture.sourceWal + r.delivery.sourceWal, 0);
  const beyondHeartbeats = apart.flatMap((r) => r.sourceRecords).filter((x) => !HEARTBEAT_KINDS.has(x.kind.split('/')[0]!));
  const beyondBytes = beyondHeartbeats.reduce((n, x) => n + x.bytesPerChange, 0) / 2;
  figures.push({
    id: 'wal-apart',
    title: 'Connector WAL on the source with postgres.stateUrl on another server',
    measured: `${fmt(onSource / changes, 1)} B/change (${fmt(beyondBytes, 2)} B/change beyond heartbeats and the server's own records)`,
    against: `the changes themselves ${fmt(changeWal / changes)} B/row`,
    ratio: round(onSource / changeWal, 4),
    target: 'heartbeats only',
    score: beyondBytes < 1 ? 1 : 1 / beyondBytes,
    pass: beyondBytes < 1,
    details: { runs: apart, beyondHeartbeats },
  });
  const perChange = (p: Placement, phase: 'capture' | 'delivery') => {
    const rs = (['insert', 'update'] as const).map((w) => find(p, w));
    const cpu = rs.reduce((n, r) => n + (r[phase].cpu.total ?? 0), 0);
    return (cpu * 1e6) / rs.reduce((n, r) => n + r.changes, 0);
  };
  const cpuFigure = (phase: 'capture' | 'delivery', id: string, title: string): Figure => ({
    id,
    title,
    measured: `${fmt(perChange('source', phase))} µs (state in the source)`,
    against: `state apart: ${fmt(perChange('apart', phase))} µs (both servers)`,
    ratio: null,
    target: 'measured',
    score: null,
    pass: null,
    details: Object.fromEntries(runs.map((r) => [`${r.placement}-${r.workload}`, r[phase].cpu])),
  });
  figures.push(cpuFigure('capture', 'pg-cpu-capture', 'Postgres CPU per durable change'), cpuFigure('delivery', 'pg-cpu-delivery', 'Postgres CPU per delivered contact'));
  return figures;
}

async function measurePlacement(placement: Placement, contacts: number, ctx: ScenarioContext): Promise<WorkloadRun[]> {
  const source = await startCluster();
  const stateCluster = placement === 'apart' ? await startCluster() : null;
  const db = await createBenchDb(source, 'walsrc');
  let state: pg.Pool | null = null;
  const emulator = await startBenchEmulator({ latencyMs: 20, authError: 'invalid' });
  let child: ReturnType<typeof startChild> | null = null;
  try {
    await db.query('ALTER TABLE users SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)');
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    let stateUrl: string | undefined;
    if (stateCluster) {
      await adminQuery(stateCluster, 'CREATE DATABASE walstate');
      stateUrl = stateCluster.url('walstate');
    }
    state = new pg.Pool({ connectionString: stateUrl ?? db.url, max: 2 });
    state.on('error', () => undefined);
    child = startChild(await writeChildConfig({ dbUrl: db.url, stateUrl, emulatorUrl: emulator.url, delivery: { pauseRetryMs: 200 }, snapshot: { onStart: false } }));
    await child.streaming();
    const out: WorkloadRun[] = [];
    for (const workload of ['insert', 'update'] as const) {
      emulator.setFaults({ authError: 'invalid' });
      const sql = workload === 'insert' ? insertUsersSql(1, contacts) : `UPDATE users SET first_name = first_name || ' updated'`;
      out.push(await measureWorkload({ placement, workload, sql, contacts, db, state, source, stateCluster, onApiBack: () => emulator.setFaults({ authError: null }) }));
      ctx.log(`wal ${placement}/${workload}: ${JSON.stringify({ ...out.at(-1)!, sourceRecords: out.at(-1)!.sourceRecords.slice(0, 4) })}`);
    }
    if ((emulator.contacts(LIST_ID)?.length ?? 0) !== contacts) throw new Error(`wal: ${emulator.contacts(LIST_ID)?.length} contacts in the list, expected ${contacts}`);
    return out;
  } finally {
    if (child) await stopChild(child);
    await emulator.close();
    await state?.end();
    await dropSlots(db);
    await db.close();
    await stopCluster(source, `wal-${placement}`);
    if (stateCluster) await stopCluster(stateCluster, `wal-${placement}-state`);
  }
}

interface WorkloadOptions {
  placement: Placement;
  workload: Workload;
  sql: string;
  contacts: number;
  db: BenchDb;
  state: pg.Pool;
  source: LocalCluster;
  stateCluster: LocalCluster | null;
  onApiBack: () => void;
}

async function measureWorkload(o: WorkloadOptions): Promise<WorkloadRun> {
  const { db, state } = o;
  const lsn = async (pool: pg.Pool) => (await pool.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
  const diff = async (a: string, b: string) => Number((await db.query<{ d: string }>('SELECT ($2::pg_lsn - $1::pg_lsn)::text AS d', [a, b])).rows[0]!.d);
  const stateLsn = () => (o.stateCluster ? lsn(state) : Promise.resolve(null));
  const cpu = () => {
    const c = clusterCpu(o.source.dataDir);
    if (!o.stateCluster) return c;
    const s = clusterCpu(o.stateCluster.dataDir);
    return Object.fromEntries([...new Set([...Object.keys(c), ...Object.keys(s)])].map((k) => [k, (c[k] ?? 0) + (s[k] ?? 0)]));
  };
  const queue = async () =>
    (await state.query<{ pending: number; open: number }>(
      `SELECT (SELECT count(*)::int FROM wooxy_cdc.outbox WHERE state = 'pending') AS pending,
              (SELECT count(*)::int FROM wooxy_cdc.outbox) + (SELECT count(*)::int FROM wooxy_cdc.requests WHERE status = 'new') AS open`,
    )).rows[0]!;

  await db.query('CHECKPOINT');
  if (o.stateCluster) await state.query('CHECKPOINT');
  const a = await lsn(db.pool);
  await db.query(o.sql);
  const b = await lsn(db.pool);
  const sb = await stateLsn();
  const cpu0 = cpu();
  const t0 = Date.now();
  await until(async () => (await queue()).pending === o.contacts, { timeoutMs: 600_000, intervalMs: 100, message: `the ${o.workload} captured` });
  const c = await lsn(db.pool);
  const sc = await stateLsn();
  const cpu1 = cpu();
  const t1 = Date.now();
  o.onApiBack();
  await until(async () => (await queue()).open === 0, { timeoutMs: 600_000, intervalMs: 100, message: `the ${o.workload} delivered and reconciled` });
  const d = await lsn(db.pool);
  const sd = await stateLsn();
  const cpu2 = cpu();
  const t2 = Date.now();
  await db.query('SELECT pg_switch_wal()');
  // An idle server's insert position can sit past a page header that nothing was flushed into yet.
  const range = (await db.query<{ from: string; to: string; some: boolean }>(
    `SELECT LEAST($1::pg_lsn, f)::text AS from, LEAST($2::pg_lsn, f)::text AS to, LEAST($1::pg_lsn, f) < LEAST($2::pg_lsn, f) AS some
     FROM pg_current_wal_flush_lsn() AS f`,
    [b, d],
  )).rows[0]!;
  const { rows } = !range.some ? { rows: [] } : await db.query<{ rel: string; kind: string; n: string; bytes: string }>(
    `WITH r AS (
       SELECT resource_manager || '/' || split_part(record_type, ' ', 1) AS kind, record_length,
              substring(block_ref from 'rel [0-9]+/[0-9]+/([0-9]+)') AS node
       FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn))
     SELECT coalesce(c.relname, r.node, '-') AS rel, kind, count(*) AS n, sum(record_length) AS bytes
     FROM r LEFT JOIN pg_class c ON pg_relation_filenode(c.oid)::text = r.node
     GROUP BY 1, 2 ORDER BY sum(record_length) DESC`,
    [range.from, range.to],
  );
  return {
    placement: o.placement,
    workload: o.workload,
    changes: o.contacts,
    changeWal: await diff(a, b),
    capture: { sourceWal: await diff(b, c), stateWal: sb && sc ? await diff(sb, sc) : null, cpu: cpuDelta(cpu1, cpu0), seconds: round((t1 - t0) / 1000, 2) },
    delivery: { sourceWal: await diff(c, d), stateWal: sc && sd ? await diff(sc, sd) : null, cpu: cpuDelta(cpu2, cpu1), seconds: round((t2 - t1) / 1000, 2) },
    sourceRecords: rows.map((r) => ({ rel: r.rel, kind: r.kind, records: Number(r.n), bytesPerChange: round(Number(r.bytes) / o.contacts, 1) })),
  };
}
