import type { LocalCluster } from '../../src/db/local-cluster.js';
import type { Emulator } from '../../src/emulator/index.js';
import { startChild, stopChild, writeChildConfig, type ChildConfig, type ChildConnector } from '../lib/connector-process.js';
import { LIST_ID, startBenchEmulator } from '../lib/emulator.js';
import { fmt, type Figure, type ScenarioContext } from '../lib/figure.js';
import { createBenchDb, drained, dropSlots, insertUsersSql, outboxState, startCluster, stopCluster, type BenchDb } from '../lib/pg.js';
import { round, until } from '../lib/stats.js';

const LIMIT_MB = 150;
/** Calls are fast here (memory does not depend on them, and a million contacts at 100 ms would take minutes). */
const LATENCY_MS = 20;
/** "Flat": the larger backlog may cost at most this much more than the smaller one. */
const FLAT = 1.25;
/** Issue 4: one transaction of this many rows streams through in bounded memory. */
const BIG_TX = 200_000;

export interface MemoryRun {
  changes: number;
  /** VmHWM (MB) once the backlog is captured (API down), and at the end (delivered). */
  peakCapturedMb: number;
  peakMb: number;
  secondsToCapture: number;
  secondsToDeliver: number;
  /** [seconds since start, VmRSS MB], every 500 ms. */
  series: Array<[number, number]>;
}

const label = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);

/**
 * Figure 6. The compiled CLI, as production runs it, takes a backlog of `n` new users while the API refuses
 * every call (authError), then delivers it when the API comes back. Rows arrive in transactions of 100k (so
 * both sizes include the same large transactions). Peak RSS is the kernel's high-water mark (VmHWM). Measured
 * with the Dockerfile's heap limits (both sizes: the figure) and with Node's defaults (the smaller size, for
 * comparison). Then the snapshot: a table that already holds the rows when the connector starts, read by its
 * snapshot on start into the outbox (API down, so the whole table is queued at once).
 */
export async function memory(ctx: ScenarioContext): Promise<Figure[]> {
  const [smallN, largeN] = ctx.quick ? [10_000, 100_000] : [100_000, 1_000_000];
  // As users start it: the package's bin, no NODE_OPTIONS (it applies its own heap settings).
  const flags = 'bin' as const;
  const how = '`wooxy-cdc run` (the bin, no NODE_OPTIONS)';
  const cluster = await startCluster();
  const runs: Array<MemoryRun & { nodeOptions: string }> = [];
  const snapshots: SnapshotRun[] = [];
  let bigTx: SnapshotRun | undefined;
  try {
    for (const [n, args] of [[smallN, flags], [largeN, flags], [smallN, []]] as const) {
      runs.push({ ...(await backlog(cluster, n, args === 'bin' ? args : [...args])), nodeOptions: args === 'bin' ? how : '(node, defaults)' });
      ctx.log(`memory: ${fmt(n)} changes, ${runs.at(-1)!.nodeOptions}: peak RSS ${runs.at(-1)!.peakMb.toFixed(1)} MB (${runs.at(-1)!.peakCapturedMb.toFixed(1)} MB once captured)`);
    }
    bigTx = await largeTransaction(cluster, BIG_TX, flags);
    ctx.log(`memory: one ${fmt(BIG_TX)}-row transaction: peak RSS ${bigTx.peakMb.toFixed(1)} MB, captured in ${bigTx.seconds} s`);
    // A 10k snapshot ends before the heap has grown to its working size: flatness is judged from 50k up.
    for (const n of ctx.quick ? [50_000, 200_000] : [smallN, largeN]) {
      snapshots.push(await snapshotOnStart(cluster, n, flags));
      ctx.log(`memory: snapshot of ${fmt(n)} rows: peak RSS ${snapshots.at(-1)!.peakMb.toFixed(1)} MB, ${fmt(snapshots.at(-1)!.rowsPerSecond)} rows/s`);
    }
  } finally {
    await stopCluster(cluster, 'memory');
  }
  const [small, large, defaults] = [runs[0]!, runs[1]!, runs[2]!];
  const growth = large.peakMb / small.peakMb;
  const [snapSmall, snapLarge] = [snapshots[0]!, snapshots[1]!];
  const snapGrowth = snapLarge.peakMb / snapSmall.peakMb;
  return [
    {
      id: 'memory',
      title: `Memory: peak RSS, ${label(largeN)}-change backlog`,
      measured: `${large.peakMb.toFixed(0)} MB (${label(smallN)}: ${small.peakMb.toFixed(0)} MB, ×${growth.toFixed(2)}), as ${how}`,
      against: `limit ${LIMIT_MB} MB, flat (≤ ×${FLAT} from ${label(smallN)} to ${label(largeN)})`,
      ratio: round(large.peakMb / LIMIT_MB, 3),
      target: `≤ ${LIMIT_MB} MB, flat`,
      score: Math.min(LIMIT_MB / large.peakMb, FLAT / growth),
      pass: large.peakMb <= LIMIT_MB && growth <= FLAT,
      details: { latencyMs: LATENCY_MS, runs },
    },
    {
      id: 'memory-large-transaction',
      title: `Memory: peak RSS, one ${label(BIG_TX)}-row transaction`,
      measured: `${bigTx.peakMb.toFixed(0)} MB, captured at ${fmt(bigTx.rowsPerSecond)} changes/s, as ${how}`,
      against: `limit ${LIMIT_MB} MB`,
      ratio: round(bigTx.peakMb / LIMIT_MB, 3),
      target: `≤ ${LIMIT_MB} MB`,
      score: LIMIT_MB / bigTx.peakMb,
      pass: bigTx.peakMb <= LIMIT_MB,
      details: { run: bigTx },
    },
    {
      id: 'memory-defaults',
      title: `Memory: peak RSS, ${label(smallN)} backlog, node without the bin's flags`,
      measured: `${defaults.peakMb.toFixed(0)} MB`,
      against: `limit ${LIMIT_MB} MB`,
      ratio: round(defaults.peakMb / LIMIT_MB, 3),
      // A comparison, not a target: nobody starts the connector this way (the bin and the image set the flags).
      target: "report (what the bin's heap flags save)",
      score: null,
      pass: null,
      details: { note: 'node dist/src/cli/main.js without the bin: no heap flags, V8 grows the heap lazily (what the bin and the Dockerfile set instead)' },
    },
    {
      id: 'memory-snapshot',
      title: `Memory: peak RSS, ${label(snapLarge.rows)}-row snapshot`,
      measured: `${snapLarge.peakMb.toFixed(0)} MB (${label(snapSmall.rows)}: ${snapSmall.peakMb.toFixed(0)} MB, ×${snapGrowth.toFixed(2)}), ${fmt(snapLarge.rowsPerSecond)} rows/s, as ${how}`,
      against: `limit ${LIMIT_MB} MB, flat (≤ ×${FLAT} from ${label(snapSmall.rows)} to ${label(snapLarge.rows)})`,
      ratio: round(snapLarge.peakMb / LIMIT_MB, 3),
      target: `≤ ${LIMIT_MB} MB, flat`,
      score: Math.min(LIMIT_MB / snapLarge.peakMb, FLAT / snapGrowth),
      pass: snapLarge.peakMb <= LIMIT_MB && snapGrowth <= FLAT,
      details: { runs: snapshots },
    },
  ];
}

function sampleRss(child: ChildConnector, series: Array<[number, number]>, t0: number): () => void {
  const timer = setInterval(() => {
    const m = child.memory();
    if (m) series.push([round((Date.now() - t0) / 1000, 1), round(m.rssMb, 1)]);
  }, 500);
  return () => clearInterval(timer);
}

/** Inserts users 1..n in transactions of 100k rows. */
async function insertUsers(db: BenchDb, n: number): Promise<void> {
  const chunk = 100_000;
  for (let from = 1; from <= n; from += chunk) await db.query(insertUsersSql(from, Math.min(n, from + chunk - 1)));
}

interface Run {
  db: BenchDb;
  emulator: Emulator;
  child: ChildConnector;
  /** [seconds since the child started, VmRSS MB], every 500 ms. */
  series: Array<[number, number]>;
  started: number;
}

/**
 * A fresh database (prepared by `before`, ahead of the connector's first start), an emulator that refuses
 * every call (authError) until the body lets it, and the compiled CLI sampled for RSS; all torn down after.
 */
async function withRefusingApi<T>(
  cluster: LocalCluster,
  name: string,
  setup: { nodeArgs: string[] | 'bin'; config?: Pick<ChildConfig, 'delivery' | 'snapshot'>; before?: (db: BenchDb) => Promise<void> },
  body: (run: Run) => Promise<T>,
): Promise<T> {
  const db = await createBenchDb(cluster, `${name}_${Date.now().toString(36)}`);
  try {
    await setup.before?.(db);
    const emulator = await startBenchEmulator({ latencyMs: LATENCY_MS, authError: 'invalid' }, 1000);
    try {
      const child = startChild(await writeChildConfig({ dbUrl: db.url, emulatorUrl: emulator.url, ...setup.config }), setup.nodeArgs);
      const run: Run = { db, emulator, child, series: [], started: Date.now() };
      const stopSampling = sampleRss(child, run.series, run.started);
      try {
        return await body(run);
      } finally {
        stopSampling();
        await stopChild(child);
      }
    } finally {
      await emulator.close();
    }
  } finally {
    await dropSlots(db);
    await db.close();
  }
}

export async function backlog(cluster: LocalCluster, n: number, nodeArgs: string[] | 'bin' = []): Promise<MemoryRun> {
  return withRefusingApi(cluster, `memory_${n}`, { nodeArgs, config: { delivery: { pauseRetryMs: 500 } } }, async ({ db, emulator, child, series, started }) => {
    await child.streaming();
    await insertUsers(db, n);
    await until(async () => (await outboxState(db)).pending === n, { timeoutMs: 900_000, intervalMs: 500, message: 'the backlog captured' });
    const captured = Date.now();
    const peakCapturedMb = child.memory()!.hwmMb;
    emulator.setFaults({ authError: null });
    await until(() => (emulator.contacts(LIST_ID)?.length ?? 0) >= n, { timeoutMs: 1_200_000, intervalMs: 500, message: 'the backlog delivered' });
    await drained(db, 600_000);
    const peakMb = child.memory()!.hwmMb;
    return {
      changes: n,
      peakCapturedMb: round(peakCapturedMb, 1),
      peakMb: round(peakMb, 1),
      secondsToCapture: round((captured - started) / 1000, 1),
      secondsToDeliver: round((Date.now() - captured) / 1000, 1),
      series: series.filter((_, i) => i % 2 === 0),
    };
  });
}

export interface SnapshotRun {
  rows: number;
  peakMb: number;
  seconds: number;
  rowsPerSecond: number;
  series: Array<[number, number]>;
}

function queuedRun(child: ChildConnector, rows: number, since: number, series: Array<[number, number]>, every: number): SnapshotRun {
  const seconds = (Date.now() - since) / 1000;
  return { rows, peakMb: round(child.memory()!.hwmMb, 1), seconds: round(seconds, 1), rowsPerSecond: Math.round(rows / seconds), series: series.filter((_, i) => i % every === 0) };
}

/**
 * The table holds `n` rows before the connector first starts; its snapshot on start reads them in chunks into
 * the outbox beside the stream. The API refuses every call, so nothing drains while the snapshot runs: peak
 * RSS is the snapshot's (and the idle stream's) alone.
 */
export async function snapshotOnStart(cluster: LocalCluster, n: number, nodeArgs: string[] | 'bin'): Promise<SnapshotRun> {
  const before = async (db: BenchDb) => {
    await insertUsers(db, n);
    await db.query('VACUUM ANALYZE users');
  };
  return withRefusingApi(cluster, `snapshot_${n}`, { nodeArgs, before, config: { delivery: { pauseRetryMs: 60_000 }, snapshot: { onStart: true } } }, async ({ db, child, series, started }) => {
    // The outbox exists once the connector has migrated its schema.
    await until(async () => (await outboxState(db).catch(() => ({ pending: -1 }))).pending === n, { timeoutMs: 1_200_000, intervalMs: 500, message: 'the snapshot queued' });
    return queuedRun(child, n, started, series, 4);
  });
}

/** One INSERT of `rows` rows in a single transaction, captured into the outbox while the API refuses calls. */
export async function largeTransaction(cluster: LocalCluster, rows: number, nodeArgs: string[] | 'bin'): Promise<SnapshotRun> {
  return withRefusingApi(cluster, 'bigtx', { nodeArgs, config: { delivery: { pauseRetryMs: 60_000 } } }, async ({ db, child, series }) => {
    await child.streaming();
    const t0 = Date.now();
    await db.query(insertUsersSql(1, rows));
    await until(async () => (await outboxState(db)).pending === rows, { timeoutMs: 900_000, intervalMs: 250, message: 'the transaction captured' });
    return queuedRun(child, rows, t0, series, 2);
  });
}
