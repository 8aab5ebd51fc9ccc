import { startChild, stopChild, writeChildConfig, type ChildConnector } from '../lib/connector-process.js';
import { acceptances, lastSeq, startBenchEmulator } from '../lib/emulator.js';
import { fmt, type Figure, type ScenarioContext } from '../lib/figure.js';
import { steadyLoad } from '../lib/load.js';
import { createBenchDb, drained, startCluster, stopCluster } from '../lib/pg.js';
import { listDiff } from '../lib/projection.js';
import { median, round, until } from '../lib/stats.js';

const LATENCY_MS = 100;
const RATE = 1000;

/**
 * Figure 7. Under a steady 1,000 changes/s (inserts, updates and deletes) and 100 ms per call, the connector
 * process is SIGKILLed at a random moment and started again at once, `kills` times. Measured per kill: until
 * the new process streams from the slot again, and until the emulator accepts its first call. At the end the
 * load stops, the queue drains, and the emulator's list is compared with the table projected through the
 * mapping: every differing contact is a lost (or duplicated) change.
 */
export async function recovery(ctx: ScenarioContext): Promise<Figure[]> {
  const kills = ctx.quick ? 2 : 4;
  const cluster = await startCluster();
  const db = await createBenchDb(cluster, 'recovery');
  const emulator = await startBenchEmulator({ latencyMs: LATENCY_MS });
  const config = await writeChildConfig({ dbUrl: db.url, emulatorUrl: emulator.url });
  let child: ChildConnector = startChild(config);
  const events: Array<{ streamingAgainS: number; deliveringAgainS: number }> = [];
  try {
    await child.streaming();
    const load = steadyLoad(db, { rate: RATE, firstId: 1, mix: { update: 0.3, delete: 0.05 } });
    for (let k = 0; k < kills; k++) {
      await new Promise((r) => setTimeout(r, 5000 + Math.random() * 5000));
      const since = lastSeq(emulator);
      const killedAt = Date.now();
      child.proc.kill('SIGKILL');
      await child.exited;
      child = startChild(config);
      await child.streaming();
      const streamingAt = Date.now();
      await until(() => acceptances(emulator, since).some((a) => a.arrivedAt > killedAt + 50), { timeoutMs: 120_000, intervalMs: 20, message: 'a call accepted after the restart' });
      const firstAccepted = acceptances(emulator, since).find((a) => a.arrivedAt > killedAt + 50)!;
      events.push({ streamingAgainS: round((streamingAt - killedAt) / 1000, 2), deliveringAgainS: round((firstAccepted.at - killedAt) / 1000, 2) });
      ctx.log(`recovery: kill ${k + 1}/${kills}: streaming again after ${events.at(-1)!.streamingAgainS} s, delivering after ${events.at(-1)!.deliveringAgainS} s`);
    }
    await new Promise((r) => setTimeout(r, 5000));
    const { changes } = await load.stop();
    await drained(db);
    const diff = await listDiff(db, emulator);
    const streaming = median(events.map((e) => e.streamingAgainS));
    const delivering = median(events.map((e) => e.deliveringAgainS));
    return [
      {
        id: 'recovery',
        title: 'Recovery: SIGKILL under load',
        measured: `streaming again in ${streaming.toFixed(1)} s, delivering in ${delivering.toFixed(1)} s (median of ${kills}); ${diff.length} changes lost`,
        against: `${fmt(changes)} changes at ${fmt(RATE)}/s`,
        ratio: diff.length,
        target: '0 lost',
        score: null,
        pass: diff.length === 0,
        details: { kills: events, changes, latencyMs: LATENCY_MS, lost: diff.length, diffSample: diff.slice(0, 10) },
      },
    ];
  } finally {
    await stopChild(child);
    await emulator.close();
    await db.close();
    await stopCluster(cluster, 'recovery');
  }
}
