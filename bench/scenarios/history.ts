import { startChild, stopChild, writeChildConfig } from '../lib/connector-process.js';
import { LIST_ID, startBenchEmulator } from '../lib/emulator.js';
import { fmt, type Figure, type ScenarioContext } from '../lib/figure.js';
import { createBenchDb, dropSlots, insertUsersSql, outboxState, startCluster, stopCluster, type BenchDb } from '../lib/pg.js';
import { median, round, until } from '../lib/stats.js';

/**
 * What the contact history (src/store/history.ts) costs in WAL, the resource the open performance issue is
 * about. A backlog of `contacts` new users is captured while the API refuses every call, then delivered and
 * reconciled; the WAL written from the API's return until every request is resolved is divided by the
 * contacts: with history.keepDays 30 and with 0 (none written), side by side, medians over repeats. With
 * history on, pg_walinspect attributes the WAL records of the history table and its two indexes exactly, so
 * the history's own share does not depend on the noise between two runs (autovacuum, checkpoints).
 */
export async function history(ctx: ScenarioContext): Promise<Figure[]> {
  const contacts = ctx.quick ? 10_000 : 50_000;
  const repeats = ctx.quick ? 1 : 3;
  const cluster = await startCluster();
  const on: Run[] = [];
  const off: Run[] = [];
  try {
    for (let i = 0; i < repeats; i++) {
      for (const keepDays of [30, 0]) {
        const db = await createBenchDb(cluster, `history_${keepDays}_${i}`);
        try {
          const run = await deliver(db, contacts, keepDays);
          (keepDays > 0 ? on : off).push(run);
          ctx.log(`history ${keepDays > 0 ? 'on' : 'off'} ${i + 1}/${repeats}: ${JSON.stringify(run)}`);
        } finally {
          await dropSlots(db);
          await db.close();
        }
      }
    }
  } finally {
    await stopCluster(cluster, 'history');
  }
  const perOn = median(on.map((r) => r.walPerContact));
  const perOff = median(off.map((r) => r.walPerContact));
  const own = median(on.map((r) => r.historyWalPerContact!));
  const share = own / perOn;
  return [
    {
      id: 'history-wal',
      title: 'History: WAL per delivered contact',
      measured: `${fmt(own)} B of history per contact (heap row and two index entries), ${fmt(100 * share, 1)}% of ${fmt(perOn)} B`,
      against: `history off: ${fmt(perOff)} B per contact`,
      ratio: round(share, 3),
      target: 'report (share of the WAL per contact)',
      score: null,
      pass: null,
      details: { contacts, repeats, historyOn: on, historyOff: off, differenceOfMedians: round(perOn - perOff, 1) },
    },
  ];
}

interface Run {
  walPerContact: number;
  /** WAL records of the history table and its indexes, per contact (history on only). */
  historyWalPerContact: number | null;
  historyRows: number;
  seconds: number;
}

async function deliver(db: BenchDb, contacts: number, keepDays: number): Promise<Run> {
  await db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  const emulator = await startBenchEmulator({ latencyMs: 20, authError: 'invalid' });
  const child = startChild(await writeChildConfig({ dbUrl: db.url, emulatorUrl: emulator.url, delivery: { pauseRetryMs: 200 }, history: { keepDays } }));
  try {
    await child.streaming();
    await db.query(insertUsersSql(1, contacts));
    await until(async () => (await outboxState(db)).pending === contacts, { timeoutMs: 600_000, intervalMs: 200, message: 'the backlog captured' });
    const start = (await db.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
    const t0 = Date.now();
    emulator.setFaults({ authError: null });
    await until(
      async () => {
        const s = await outboxState(db);
        return s.pending + s.inflight + s.unresolved === 0 && (emulator.contacts(LIST_ID)?.length ?? 0) === contacts;
      },
      { timeoutMs: 600_000, intervalMs: 100, message: 'the backlog delivered and resolved' },
    );
    const seconds = (Date.now() - t0) / 1000;
    const end = (await db.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
    // pg_walinspect reads only what is flushed.
    await until(async () => (await db.query<{ ok: boolean }>('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS ok', [end])).rows[0]!.ok, { message: 'the WAL flushed' });
    const wal = Number((await db.query<{ b: string }>('SELECT $2::pg_lsn - $1::pg_lsn AS b', [start, end])).rows[0]!.b);
    const rows = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM wooxy_cdc.history')).rows[0]!.n);
    let own: number | null = null;
    if (keepDays > 0) {
      // The history relations' files; WAL records name the blocks they change as "rel spc/db/relfilenode".
      const { rows: files } = await db.query<{ f: string }>(
        `SELECT pg_relation_filenode(c.oid)::text AS f FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'wooxy_cdc' AND c.relname IN ('history', 'history_contact', 'history_resolved')`,
      );
      const pattern = `rel [0-9]+/[0-9]+/(${files.map((r) => r.f).join('|')}) `;
      const { rows: r } = await db.query<{ b: string | null }>(
        `SELECT sum(record_length) AS b FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn) WHERE block_ref ~ $3`,
        [start, end, pattern],
      );
      own = Number(r[0]?.b ?? 0) / contacts;
    }
    return { walPerContact: round(wal / contacts, 1), historyWalPerContact: own === null ? null : round(own, 1), historyRows: rows, seconds: round(seconds, 1) };
  } finally {
    await stopChild(child);
    await emulator.close();
  }
}
