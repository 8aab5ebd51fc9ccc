/**
 * Investigation aid, not part of `npm run bench`: the latency scenario for connector variants that differ only
 * in their child environment, alternating within one run (AB='X=1,X=2' ROUNDS=3 DURATION=15).
 */
import { startChild, stopChild, writeChildConfig } from '../lib/connector-process.js';
import { acceptances, lastSeq, startBenchEmulator } from '../lib/emulator.js';
import { steadyLoad } from '../lib/load.js';
import { createBenchDb, drained, dropSlots, startCluster, stopCluster } from '../lib/pg.js';
import { median, percentile, until } from '../lib/stats.js';

const variants = (process.env.AB ?? 'AB_FACTOR=1,AB_FACTOR=2').split(',');
const rounds = Number(process.env.ROUNDS ?? 3);
const seconds = Number(process.env.DURATION ?? 15);
const cluster = await startCluster();
const res: Record<string, Array<[number, number]>> = {};
let i = 0;
for (let r = 0; r < rounds; r++) {
  for (const v of r % 2 ? [...variants].reverse() : variants) {
    const env = Object.fromEntries(v.split('+').filter((x) => x.includes('=')).map((x) => x.split('=') as [string, string]));
    const db = await createBenchDb(cluster, `abl_${i++}`);
    const emulator = await startBenchEmulator({ latencyMs: 100 });
    const child = startChild(await writeChildConfig({ dbUrl: db.url, emulatorUrl: emulator.url }), [], env);
    await child.streaming();
    const since = lastSeq(emulator);
    const load = steadyLoad(db, { rate: 1000, firstId: 1_000_000 });
    await new Promise((res) => setTimeout(res, seconds * 1000));
    const { inserted } = await load.stop();
    await until(() => acceptances(emulator, since).reduce((s, a) => s + a.contacts, 0) >= inserted, { timeoutMs: 120000 });
    await drained(db);
    const { rows } = await db.query<{ id: string; c: number }>(`SELECT id::text, extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000 AS c FROM users WHERE id >= 1000000`);
    const commit = new Map(rows.map((x) => [x.id, Number(x.c)]));
    const warm = Math.min(...commit.values()) + 2000;
    const lat: number[] = [];
    for (const a of acceptances(emulator, since)) for (const c of emulator.request(a.requestId)?.results.success ?? []) { const t = commit.get(c.userId!); if (t !== undefined && t >= warm) lat.push(a.at - t); }
    (res[v] ??= []).push([Math.round(percentile(lat, 50)), Math.round(percentile(lat, 99))]);
    console.log(`round ${r} ${v}: p50 ${Math.round(percentile(lat, 50))} p99 ${Math.round(percentile(lat, 99))}`);
    await stopChild(child);
    await emulator.close();
    await dropSlots(db);
    await db.close();
  }
}
for (const [v, xs] of Object.entries(res)) console.log(v, JSON.stringify(xs), 'median p50', median(xs.map((x) => x[0])), 'median p99', median(xs.map((x) => x[1])));
await stopCluster(cluster, 'abl');
