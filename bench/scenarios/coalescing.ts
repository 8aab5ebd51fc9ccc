import { startChild, stopChild, writeChildConfig } from '../lib/connector-process.js';
import { acceptances, callCounts, lastSeq, LIST_ID, startBenchEmulator } from '../lib/emulator.js';
import { fmt, type Figure, type ScenarioContext } from '../lib/figure.js';
import { createBenchDb, drained, insertUsersSql, startCluster, stopCluster, trackProgress } from '../lib/pg.js';
import { listDiff } from '../lib/projection.js';
import { round, until } from '../lib/stats.js';

const LATENCY_MS = 100;

/**
 * Figure 5. `hot` users are inserted and synced; then `updates` row updates hit them (transactions of
 * 1,000 updates of random hot users, as fast as Postgres takes them) while the connector runs at 100 ms per
 * call. Counted from the first update until the queue is empty: calls of every endpoint, contacts sent, and
 * both per change. The list must equal the table at the end.
 */
export async function coalescing(ctx: ScenarioContext): Promise<Figure[]> {
  const hot = 10_000;
  const updates = ctx.quick ? 100_000 : 1_000_000;
  const perTx = 1_000;
  const cluster = await startCluster();
  const db = await createBenchDb(cluster, 'coalescing');
  const emulator = await startBenchEmulator({ latencyMs: LATENCY_MS });
  const child = startChild(await writeChildConfig({ dbUrl: db.url, emulatorUrl: emulator.url }));
  try {
    await child.streaming();
    await db.query(insertUsersSql(1, hot));
    await until(() => (emulator.contacts(LIST_ID)?.length ?? 0) === hot, { timeoutMs: 300_000, message: 'the hot users synced' });
    await drained(db);
    const since = lastSeq(emulator);
    const progress = trackProgress(db, () => callCounts(emulator, since).contacts);
    const t0 = Date.now();
    for (let done = 0, tx = 0; done < updates; done += perTx, tx++) {
      // Random hot users, distinct within a transaction, so each statement changes exactly perTx rows.
      await db.query(
        `UPDATE users SET first_name = 'v${tx}-' || id, updated_at = now()
         WHERE id IN (SELECT g FROM generate_series(1, ${hot}) g ORDER BY random() LIMIT ${perTx})`,
      );
    }
    const writtenMs = Date.now() - t0;
    ctx.log(`coalescing: ${fmt(updates)} updates written in ${(writtenMs / 1000).toFixed(1)} s`);
    await drained(db, 900_000);
    const totalMs = Date.now() - t0;
    const timeline = progress.stop();
    const counts = callCounts(emulator, since);
    const diff = await listDiff(db, emulator);
    const accepted = acceptances(emulator, since).length;
    const callsPerChange = counts.calls / updates;
    const contactsPerChange = counts.contacts / updates;
    return [
      {
        id: 'coalescing',
        title: `Coalescing: ${fmt(updates / 1e6, updates < 1e6 ? 1 : 0)}M updates of ${fmt(hot / 1000)}k users`,
        measured: `${fmt(counts.calls)} calls, ${fmt(counts.contacts)} contacts sent`,
        against: `${fmt(updates)} changes`,
        ratio: round(contactsPerChange, 4),
        target: 'report (contacts sent per change)',
        score: null,
        pass: null,
        details: {
          hot,
          updates,
          updatesPerTransaction: perTx,
          latencyMs: LATENCY_MS,
          callsPerChange: round(callsPerChange, 5),
          contactsPerChange: round(contactsPerChange, 4),
          contactCalls: counts.contactCalls,
          acceptedContactCalls: accepted,
          findCalls: counts.finds,
          rejectedCalls: counts.rejected,
          secondsToWrite: round(writtenMs / 1000, 1),
          secondsToDrain: round(totalMs / 1000, 1),
          listDiffersFromTable: diff.length,
          diffSample: diff.slice(0, 5),
          timeline,
        },
      },
    ];
  } finally {
    await stopChild(child);
    await emulator.close();
    await db.close();
    await stopCluster(cluster, 'coalescing');
  }
}
