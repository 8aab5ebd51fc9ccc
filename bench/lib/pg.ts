import { copyFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { LocalCluster } from '../../src/db/local-cluster.js';
import { until } from './stats.js';

/**
 * A throwaway cluster per scenario (src/db/local-cluster.ts: fsync off, as in the test harness), but with
 * synchronous_commit on, Postgres's default: with it off, the walsender sends a commit only once the WAL
 * writer has flushed it (every wal_writer_delay, 200 ms), which no production server adds to latency.
 * pg_stat_statements is loaded so a scenario can say where Postgres spent its time, and commit
 * timestamps are tracked so latency is measured from the real commit.
 */
export const BENCH_PG_SETTINGS = {
  shared_preload_libraries: 'pg_stat_statements',
  'pg_stat_statements.track': 'all',
  track_commit_timestamp: 'on',
  track_io_timing: 'on',
  max_wal_size: '4GB',
  synchronous_commit: 'on',
} as const;

/** BENCH_AUTO_EXPLAIN=<ms>: log the plan of every statement slower than that (profiling aid). */
const AUTO_EXPLAIN = process.env.BENCH_AUTO_EXPLAIN;

export async function startCluster(): Promise<LocalCluster> {
  const explain: Record<string, string> = AUTO_EXPLAIN
    ? {
        shared_preload_libraries: 'pg_stat_statements,auto_explain',
        'auto_explain.log_min_duration': `${AUTO_EXPLAIN}ms`,
        'auto_explain.log_analyze': 'on',
        'auto_explain.log_buffers': 'on',
        'auto_explain.log_nested_statements': 'on',
      }
    : {};
  return LocalCluster.start({ settings: { ...BENCH_PG_SETTINGS, ...explain } });
}

/** Stops a scenario's cluster; with BENCH_AUTO_EXPLAIN its server log is kept as bench/results/<name>-server.log. */
export async function stopCluster(cluster: LocalCluster, name: string): Promise<void> {
  if (AUTO_EXPLAIN) copyFileSync(path.join(cluster.dataDir, 'server.log'), path.resolve(import.meta.dirname, `../results/${name}-server.log`));
  await cluster.stop('immediate');
}

export interface BenchDb {
  url: string;
  name: string;
  pool: pg.Pool;
  query: <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;
  close: () => Promise<void>;
}

export async function adminQuery(cluster: LocalCluster, text: string, values?: unknown[]): Promise<pg.QueryResult> {
  const c = new pg.Client(cluster.url());
  await c.connect();
  try {
    return await c.query(text, values);
  } finally {
    await c.end();
  }
}

/** A fresh database with the bench's `users` table. */
export async function createBenchDb(cluster: LocalCluster, name: string): Promise<BenchDb> {
  await adminQuery(cluster, `CREATE DATABASE ${name}`);
  const url = cluster.url(name);
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  pool.on('error', () => undefined);
  await pool.query(USERS_DDL);
  await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  return {
    url,
    name,
    pool,
    query: (text, values) => pool.query(text, values),
    close: async () => {
      await pool.end();
    },
  };
}

export const USERS_DDL = `CREATE TABLE users (
  id bigint PRIMARY KEY,
  email text NOT NULL,
  first_name text,
  last_name text,
  plan text,
  updated_at timestamptz NOT NULL DEFAULT now()
)`;

/** The mapping every scenario syncs: four contact fields of `users`. */
export const USERS_MAPPING = {
  table: 'public.users',
  contactListId: 'bench',
  key: 'id',
  fields: { userId: 'id', email: 'email', firstName: 'first_name', lastName: 'last_name' },
};

/** Inserts ids [from, to] in one statement (one transaction). */
export function insertUsersSql(from: number, to: number): string {
  return `INSERT INTO users (id, email, first_name, last_name, plan)
    SELECT g, 'user' || g || '@example.com', 'First' || g, 'Last' || (g % 1000), 'free' FROM generate_series(${from}, ${to}) g`;
}

/** Time spent by the statements of one database, most expensive first (pg_stat_statements). */
export async function topStatements(db: BenchDb, limit = 6): Promise<Array<{ query: string; calls: number; totalMs: number; rows: number }>> {
  const { rows } = await db.query<{ query: string; calls: string; total: number; rows: string }>(
    `SELECT regexp_replace(left(query, 160), '\\s+', ' ', 'g') AS query, calls, total_exec_time AS total, rows
     FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()
     ORDER BY total_exec_time DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({ query: r.query, calls: Number(r.calls), totalMs: Math.round(r.total), rows: Number(r.rows) }));
}

export async function resetStatements(db: BenchDb): Promise<void> {
  await db.query('SELECT pg_stat_statements_reset()');
}

/** Drops this database's slots once their walsenders have gone (a closed client's walsender exits a moment later). */
export async function dropSlots(db: BenchDb): Promise<void> {
  await until(async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database() AND active')).rows[0]!.n === 0, {
    timeoutMs: 30_000,
    message: 'replication slots released',
  });
  await db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()');
}

export async function serverVersion(cluster: LocalCluster): Promise<string> {
  const { rows } = await adminQuery(cluster, 'SHOW server_version');
  return String((rows[0] as { server_version: string }).server_version);
}

export interface OutboxState {
  pending: number;
  inflight: number;
  unresolved: number;
  durableLsn: string | null;
}

/** Where the connector's queue stands (its schema is `wooxy_cdc`). */
export async function outboxState(db: BenchDb): Promise<OutboxState> {
  const { rows } = await db.query<{ pending: number; inflight: number; unresolved: number; durable: string | null }>(
    `SELECT (SELECT count(*)::int FROM wooxy_cdc.outbox WHERE state = 'pending') AS pending,
            (SELECT count(*)::int FROM wooxy_cdc.outbox WHERE state = 'inflight') AS inflight,
            (SELECT count(*)::int FROM wooxy_cdc.requests WHERE status = 'new') AS unresolved,
            (SELECT max(durable_lsn)::text FROM wooxy_cdc.replication_state) AS durable`,
  );
  const r = rows[0]!;
  return { pending: r.pending, inflight: r.inflight, unresolved: r.unresolved, durableLsn: r.durable };
}

/**
 * Resolves once everything written before the call is captured, sent and resolved. The durable LSN moves
 * only with source commits (the connector's own writes are not in its publication), so a no-op update of one
 * row (no mapped column changes: nothing is sent) marks the point the stream must pass.
 */
export async function drained(db: BenchDb, timeoutMs = 600_000): Promise<void> {
  const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const mark = rows[0]!.lsn;
  await db.query('UPDATE users SET plan = plan WHERE id = (SELECT min(id) FROM users)');
  await until(
    async () => {
      const s = await outboxState(db);
      if (s.pending + s.inflight + s.unresolved > 0 || s.durableLsn === null) return false;
      const ok = await db.query<{ ok: boolean }>('SELECT $1::pg_lsn > $2::pg_lsn AS ok', [s.durableLsn, mark]);
      return ok.rows[0]!.ok;
    },
    { timeoutMs, intervalMs: 250, message: 'the connector to drain its queue' },
  );
}

export interface Progress {
  /** Seconds since the phase started. */
  t: number;
  pending: number;
  inflight: number;
  unresolved: number;
  /** WAL bytes between the server's position and the connector's durable LSN: capture's backlog. */
  captureLagBytes: number;
  /** Contacts in accepted calls so far (from the emulator). */
  accepted: number;
}

/** Samples the queue and capture lag every `everyMs` until stopped: a timeline of where a phase spends its time. */
export function trackProgress(db: BenchDb, accepted: () => number, everyMs = 2000): { stop: () => Progress[] } {
  const t0 = Date.now();
  const samples: Progress[] = [];
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      try {
        const s = await outboxState(db);
        const lag = await db.query<{ lag: string | null }>('SELECT pg_current_wal_lsn() - $1::pg_lsn AS lag', [s.durableLsn ?? '0/0']);
        samples.push({ t: Math.round((Date.now() - t0) / 100) / 10, pending: s.pending, inflight: s.inflight, unresolved: s.unresolved, captureLagBytes: Number(lag.rows[0]?.lag ?? 0), accepted: accepted() });
      } catch {
        // a sample lost is not worth failing the run for
      } finally {
        busy = false;
      }
    })();
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return samples;
    },
  };
}
