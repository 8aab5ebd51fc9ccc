import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { parseConfig } from '../../src/config/loader.js';
import { Connector } from '../../src/connector.js';
import { createDb } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrator.js';
import { createLogger } from '../../src/observability/logger.js';
import { compareLsn } from '../../src/source/lsn.js';
import { fmt, procCpuSeconds, type Figure, type ScenarioContext } from '../lib/figure.js';
import { adminQuery, createBenchDb, dropSlots, insertUsersSql, resetStatements, startCluster, stopCluster, topStatements, USERS_MAPPING, type BenchDb } from '../lib/pg.js';
import { median, round, until } from '../lib/stats.js';

interface Run {
  ms: number;
  changes: number;
  /** CPU seconds of this process, the walsender, and the connector's own backends (in either database) during the run. */
  cpu: { node: number; walsender: number | null; backends: number | null };
  /** Seconds the stream spent inside outbox writes (capture only). */
  writeSeconds?: number;
  writes?: number;
}

const PUBLICATION = 'wooxy_cdc';

/**
 * Figure 1. The same WAL (one transaction inserting `rows` rows, written once) is read through two slots
 * created before it: once by a bare pg-logical-replication client that does nothing per message (manual
 * acknowledgement, flow control on: the connector's own settings), once by the connector's capture stage
 * until the transaction is durable in the outbox. Both clocks start when streaming starts, so the server's
 * decoding of the transaction is inside both. Repeats alternate which goes first; the ratio is the median of
 * the per-repeat ratios.
 */
export async function ingest(ctx: ScenarioContext): Promise<Figure[]> {
  const rows = ctx.quick ? 50_000 : 200_000;
  const repeats = ctx.quick ? 3 : 5;
  const cluster = await startCluster();
  const raw: Run[] = [];
  const cdc: Run[] = [];
  /** The same capture with postgres.stateUrl: the state in another database of the same server. */
  const apart: Run[] = [];
  let statements: Awaited<ReturnType<typeof topStatements>> = [];
  try {
    for (let i = 0; i < repeats; i++) {
      const db = await createBenchDb(cluster, `ingest_${i}`);
      try {
        await db.query(`CREATE PUBLICATION ${PUBLICATION} FOR TABLE users`);
        await db.query(
          `SELECT pg_create_logical_replication_slot('raw_${i}', 'pgoutput'), pg_create_logical_replication_slot('cdc_${i}', 'pgoutput'), pg_create_logical_replication_slot('apart_${i}', 'pgoutput')`,
        );
        await adminQuery(cluster, `CREATE DATABASE ingest_state_${i}`);
        const stateUrl = cluster.url(`ingest_state_${i}`);
        for (const url of [db.url, stateUrl]) {
          const handle = createDb({ url, schema: 'wooxy_cdc' });
          await migrate(handle.db, 'wooxy_cdc');
          await handle.close();
        }
        const before = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
        await db.query(insertUsersSql(1, rows));
        await db.query('CHECKPOINT');
        for (const which of i % 2 === 0 ? ['raw', 'cdc', 'apart'] : ['apart', 'cdc', 'raw']) {
          if (which === 'raw') raw.push(await rawDecode(db, `raw_${i}`, rows));
          else if (which === 'apart') apart.push(await capture(db, `apart_${i}`, rows, before, stateUrl));
          else {
            await resetStatements(db);
            cdc.push(await capture(db, `cdc_${i}`, rows, before));
            statements = await topStatements(db);
          }
        }
        ctx.log(`ingest ${i + 1}/${repeats}: raw ${fmt(rows / (raw.at(-1)!.ms / 1000))}/s, capture ${fmt(rows / (cdc.at(-1)!.ms / 1000))}/s, with the state apart ${fmt(rows / (apart.at(-1)!.ms / 1000))}/s`);
        await dropSlots(db);
      } finally {
        await db.close();
      }
    }
  } finally {
    await stopCluster(cluster, 'ingest');
  }
  const ratios = raw.map((r, i) => r.ms / cdc[i]!.ms);
  const ratio = median(ratios);
  const rawRate = median(raw.map((r) => r.changes / (r.ms / 1000)));
  const cdcRate = median(cdc.map((r) => r.changes / (r.ms / 1000)));
  const apartRatios = raw.map((r, i) => r.ms / apart[i]!.ms);
  const apartRatio = median(apartRatios);
  const apartRate = median(apart.map((r) => r.changes / (r.ms / 1000)));
  return [
    {
      id: 'ingest',
      title: 'Ingest: WAL → durable outbox',
      measured: `${fmt(cdcRate)} changes/s`,
      against: `raw decode ${fmt(rawRate)} changes/s`,
      ratio: round(ratio, 3),
      target: '≥ 0.5',
      score: ratio / 0.5,
      pass: ratio >= 0.5,
      details: {
        workload: `one transaction inserting ${fmt(rows)} rows`,
        repeats,
        ratios: ratios.map((r) => round(r, 3)),
        raw: raw.map(summary),
        capture: cdc.map(summary),
        postgresTopStatementsLastCapture: statements,
      },
    },
    {
      id: 'ingest-apart',
      title: 'Ingest with postgres.stateUrl (state in another database, same server)',
      measured: `${fmt(apartRate)} changes/s`,
      against: `raw decode ${fmt(rawRate)} changes/s`,
      ratio: round(apartRatio, 3),
      target: '≥ 0.5',
      score: apartRatio / 0.5,
      pass: apartRatio >= 0.5,
      details: { workload: `the same WAL as the ingest figure`, ratios: apartRatios.map((r) => round(r, 3)), capture: apart.map(summary) },
    },
  ];
}

const summary = (r: Run) => ({ ...r, ms: Math.round(r.ms), perSecond: Math.round(r.changes / (r.ms / 1000)) });

async function backendPids(db: BenchDb, slot: string): Promise<{ walsender: number | null; backends: number[] }> {
  const s = await db.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  const b = await db.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'wooxy-cdc' AND backend_type = 'client backend'`);
  return { walsender: s.rows[0]?.pid ?? null, backends: b.rows.map((r) => r.pid) };
}

const cpuOf = (pids: number[]) => pids.reduce<number | null>((sum, pid) => (sum ?? 0) + (procCpuSeconds(pid) ?? 0), pids.length ? 0 : null);

/** A client that decodes and does nothing else: the ceiling of any pgoutput consumer in Node. */
async function rawDecode(db: BenchDb, slot: string, expected: number): Promise<Run> {
  const service = new LogicalReplicationService({ connectionString: db.url }, { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } });
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION] });
  let changes = 0;
  let started = 0;
  const cpu0 = process.cpuUsage();
  const finished = new Promise<number>((resolve, reject) => {
    service.on('start', () => {
      started = performance.now();
    });
    service.on('data', (_lsn: string, msg: Pgoutput.Message) => {
      if (msg.tag === 'insert') changes++;
      else if (msg.tag === 'commit' && changes >= expected) resolve(performance.now());
    });
    service.on('error', reject);
  });
  service.subscribe(plugin, slot, '0/00000000').catch(() => undefined);
  const ended = await finished;
  const cpu = process.cpuUsage(cpu0);
  const { walsender } = await backendPids(db, slot);
  const walCpu = walsender ? procCpuSeconds(walsender) : null;
  await service.destroy();
  return { ms: ended - started, changes, cpu: { node: (cpu.user + cpu.system) / 1e6, walsender: walCpu, backends: null } };
}

/** The connector's capture stage alone (no delivery), in this process like the raw client. */
async function capture(db: BenchDb, slot: string, expected: number, before: string, stateUrl?: string): Promise<Run> {
  const config = parseConfig(
    {
      postgres: { url: db.url, ...(stateUrl ? { stateUrl } : {}), slot, publication: PUBLICATION },
      wooxy: { accessToken: 'unused', baseUrl: 'http://127.0.0.1:9/v3' },
      http: { port: 0 },
      mappings: [USERS_MAPPING],
    },
    {},
  );
  const connector = new Connector({ config, log: createLogger({ level: 'warn', pretty: false }), captureOnly: true });
  const cpu0 = process.cpuUsage();
  await connector.start();
  await until(() => connector.replication?.isStreaming === true, { intervalMs: 1, message: 'capture streaming' });
  const started = performance.now();
  await until(() => compareLsn(connector.replication!.durableLsn, before) > 0, { intervalMs: 2, timeoutMs: 600_000, message: 'the transaction durable in the outbox' });
  const ended = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const pids = await backendPids(db, slot);
  const walCpu = pids.walsender ? procCpuSeconds(pids.walsender) : null;
  const backendCpu = cpuOf(pids.backends);
  const flush = (await connector.metrics.outboxFlushSeconds.get()).values;
  const changes = (await connector.metrics.changes.get()).values.reduce((s, v) => s + v.value, 0);
  await connector.stop();
  const state = stateUrl ? new pg.Client(stateUrl) : null;
  await state?.connect();
  const count = `SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE state = 'pending'`;
  const pending = state ? await state.query<{ n: number }>(count) : await db.query<{ n: number }>(count);
  await state?.end();
  if (pending.rows[0]!.n !== expected) throw new Error(`capture: ${pending.rows[0]!.n} outbox entries, expected ${expected}`);
  return {
    ms: ended - started,
    changes,
    cpu: { node: (cpu.user + cpu.system) / 1e6, walsender: walCpu, backends: backendCpu },
    writeSeconds: round(flush.find((v) => v.metricName === 'wooxy_cdc_outbox_flush_seconds_sum')?.value ?? 0, 3),
    writes: flush.find((v) => v.metricName === 'wooxy_cdc_outbox_flush_seconds_count')?.value ?? 0,
  };
}
