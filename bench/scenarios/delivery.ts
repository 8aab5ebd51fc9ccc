import type { Emulator } from '../../src/emulator/index.js';
import { startChild, stopChild, writeChildConfig } from '../lib/connector-process.js';
import { acceptances, BENCH_TOKEN, callCounts, lastSeq, startBenchEmulator } from '../lib/emulator.js';
import { clusterCpu, cpuDelta, fmt, procCpuSeconds, type Figure, type ScenarioContext } from '../lib/figure.js';
import { createBenchDb, dropSlots, insertUsersSql, outboxState, resetStatements, startCluster, stopCluster, topStatements, type BenchDb } from '../lib/pg.js';
import { median, percentile, round, until } from '../lib/stats.js';

const LATENCY_MS = 100;
/** The vendor's cap: 10 calls in flight × 100 contacts per call, each call taking LATENCY_MS. */
const CAP_PER_SECOND = (10 * 100) / (LATENCY_MS / 1000);

/**
 * Figures 2 and 3. A backlog of `contacts` new users is captured while the API refuses every call
 * (authError), then the API comes back with 100 ms per call and the connector — the compiled CLI in its own
 * process, default settings — delivers it. The rate is contacts accepted between the first accepted call's
 * arrival and the last one's answer, against the cap of 10 in flight × 100 contacts / 100 ms.
 *
 * The naive alternative syncs rows the way a script around the vendor's PHP SDK does: per changed row, one
 * contacts/add with one contact, waiting for each answer, against the same emulator and latency. It is
 * measured on a sample (at 100 ms a call the whole backlog would take hours) between the connector's repeats.
 */
export async function delivery(ctx: ScenarioContext): Promise<Figure[]> {
  const contacts = ctx.quick ? 20_000 : 100_000;
  const repeats = ctx.quick ? 2 : 3;
  const naiveSample = ctx.quick ? 30 : 100;
  const cluster = await startCluster();
  const runs: Delivered[] = [];
  const naive: number[] = [];
  try {
    for (let i = 0; i < repeats; i++) {
      const db = await createBenchDb(cluster, `delivery_${i}`);
      const emulator = await startBenchEmulator({ latencyMs: LATENCY_MS, authError: 'invalid' });
      try {
        runs.push(await deliverBacklog(db, emulator, contacts, cluster.dataDir));
        ctx.log(`delivery ${i + 1}/${repeats}: ${fmt(runs.at(-1)!.perSecond)} contacts/s ${JSON.stringify({ ...runs.at(-1)!, postgres: undefined })}`);
        naive.push(await naiveSync(db, emulator, naiveSample));
        ctx.log(`naive ${i + 1}/${repeats}: ${fmt(naive.at(-1)!, 2)} contacts/s`);
      } finally {
        await emulator.close();
        await dropSlots(db);
        await db.close();
      }
    }
  } finally {
    await stopCluster(cluster, 'delivery');
  }
  const rate = median(runs.map((r) => r.perSecond));
  const ratio = rate / CAP_PER_SECOND;
  const naiveRate = median(naive);
  const speedup = rate / naiveRate;
  return [
    {
      id: 'delivery',
      title: 'Delivery: contacts/s at 100 ms per call',
      measured: `${fmt(rate)} contacts/s`,
      against: `API cap ${fmt(CAP_PER_SECOND)} contacts/s`,
      ratio: round(ratio, 3),
      target: '≥ 0.95',
      score: ratio / 0.95,
      pass: ratio >= 0.95,
      details: { backlog: contacts, latencyMs: LATENCY_MS, repeats: runs },
    },
    {
      id: 'naive',
      title: 'Speed-up over a naive SDK script',
      measured: `${fmt(speedup)}× faster`,
      against: `naive ${fmt(naiveRate, 2)} contacts/s (1 contact per call, 1 call at a time)`,
      ratio: round(speedup, 1),
      target: '≥ 500×',
      score: speedup / 500,
      pass: speedup >= 500,
      details: { naivePerSecond: naive.map((n) => round(n, 3)), sample: naiveSample, latencyMs: LATENCY_MS },
    },
  ];
}

interface Delivered {
  perSecond: number;
  seconds: number;
  resumeMs: number;
  contactCalls: number;
  findCalls: number;
  rejectedCalls: number;
  peakConcurrency: number;
  rejectedConcurrency: number;
  /** CPU seconds from the API coming back to the last acceptance, by process. */
  /** How long the emulator took to answer an accepted call (its latency is 100 ms): more is this machine's load. */
  emulatorAnswerMs: { p50: number; p95: number; max: number };
  cpuSeconds: { connector: number; postgres: Record<string, number>; emulatorAndBench: number };
  postgres: Awaited<ReturnType<typeof topStatements>>;
}

async function deliverBacklog(db: BenchDb, emulator: Emulator, contacts: number, dataDir: string): Promise<Delivered> {
  const config = await writeChildConfig({ dbUrl: db.url, emulatorUrl: emulator.url, delivery: { pauseRetryMs: 200 } });
  const child = startChild(config);
  try {
    await child.streaming();
    await db.query(insertUsersSql(1, contacts));
    await until(async () => (await outboxState(db)).pending === contacts, { timeoutMs: 600_000, intervalMs: 200, message: 'the backlog captured' });
    await resetStatements(db);
    const since = lastSeq(emulator);
    const cpu0 = { connector: procCpuSeconds(child.pid) ?? 0, postgres: clusterCpu(dataDir), bench: process.cpuUsage() };
    const t0 = Date.now();
    emulator.setFaults({ authError: null });
    await until(() => acceptances(emulator, since).reduce((s, a) => s + a.contacts, 0) >= contacts, { timeoutMs: 600_000, intervalMs: 100, message: 'the backlog accepted' });
    const bench = process.cpuUsage(cpu0.bench);
    const cpu = {
      connector: round((procCpuSeconds(child.pid) ?? 0) - cpu0.connector, 2),
      postgres: cpuDelta(clusterCpu(dataDir), cpu0.postgres),
      emulatorAndBench: round((bench.user + bench.system) / 1e6, 2),
    };
    const acc = acceptances(emulator, since);
    const first = acc[0]!.arrivedAt;
    const last = Math.max(...acc.map((a) => a.at));
    const counts = callCounts(emulator, since);
    const served = emulator.requestLog().filter((e) => e.seq > since && e.outcome === 'accepted').map((e) => e.durationMs);
    const stats = emulator.stats();
    return {
      perSecond: Math.round(contacts / ((last - first) / 1000)),
      seconds: round((last - first) / 1000, 2),
      resumeMs: first - t0,
      contactCalls: counts.contactCalls,
      findCalls: counts.finds,
      rejectedCalls: counts.rejected,
      peakConcurrency: stats.peakConcurrency,
      rejectedConcurrency: stats.rejectedConcurrency,
      cpuSeconds: cpu,
      emulatorAnswerMs: { p50: percentile(served, 50), p95: percentile(served, 95), max: Math.max(...served) },
      postgres: await topStatements(db),
    };
  } finally {
    await stopChild(child);
  }
}

/** What a hand-written sync script does: one row, one call, wait, next. */
async function naiveSync(db: BenchDb, emulator: Emulator, sample: number): Promise<number> {
  const { rows } = await db.query<{ id: string; email: string; first_name: string; last_name: string }>('SELECT id, email, first_name, last_name FROM users ORDER BY id LIMIT $1', [sample]);
  const t0 = performance.now();
  for (const r of rows) {
    const res = await fetch(`${emulator.url}/contacts/add`, {
      method: 'POST',
      headers: { 'Access-Token': BENCH_TOKEN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ contactListId: 'naive', contacts: [{ userId: r.id, email: r.email, firstName: r.first_name, lastName: r.last_name }] }),
    });
    const body = (await res.json()) as { result?: boolean };
    if (!body.result) throw new Error(`naive add rejected: ${JSON.stringify(body)}`);
  }
  return rows.length / ((performance.now() - t0) / 1000);
}
