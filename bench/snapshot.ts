/**
 * Snapshot throughput and memory: `wooxy-cdc snapshot` over a table of ROWS rows (default 200,000), as a
 * child process, on a throwaway local Postgres (or WOOXY_TEST_DATABASE_URL / DATABASE_URL, a superuser URL
 * with wal_level=logical). Reports rows/s and the child's peak RSS (VmHWM), once on an idle table and once
 * while a writer updates, deletes and inserts rows through the snapshot.
 *
 *   npx tsx bench/snapshot.ts      # env: ROWS=1000000 CHUNK=5000 BENCH_DIST=1 (run dist/: npm run build first)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { LocalCluster } from '../src/db/local-cluster.js';

const ROWS = Number(process.env.ROWS ?? 200_000);
const CHUNK = Number(process.env.CHUNK ?? 5_000);

function peakRssMb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

async function runSnapshot(configFile: string): Promise<{ seconds: number; peakRssMb: number | null; output: string }> {
  const args = process.env.BENCH_DIST ? ['dist/src/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
  const started = Date.now();
  const child = spawn(process.execPath, [...args, 'snapshot', '--config', configFile], {
    // BENCH_NODE_OPTIONS=--max-old-space-size=64 shows whether memory is bounded or merely not yet collected.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', WOOXY_ACCESS_TOKEN: 'bench', ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let peak: number | null = null;
  const sampler = setInterval(() => {
    const v = peakRssMb(child.pid!);
    if (v !== null) peak = Math.max(peak ?? 0, v);
  }, 50);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`snapshot exited ${code}:\n${output}`);
  return { seconds: (Date.now() - started) / 1000, peakRssMb: peak, output };
}

async function main(): Promise<void> {
  const explicit = process.env.WOOXY_TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  const cluster = explicit ? null : await LocalCluster.start();
  const adminUrl = explicit ?? cluster!.url();
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  const db = `wooxy_bench_snapshot_${Date.now().toString(36)}`;
  await admin.query(`CREATE DATABASE ${db}`);
  const url = new URL(adminUrl);
  url.pathname = `/${db}`;
  const client = new pg.Client(url.toString());
  await client.connect();
  const results: Record<string, unknown> = {
    rows: ROWS,
    chunkSize: CHUNK,
    node: process.version,
    dist: Boolean(process.env.BENCH_DIST),
    nodeOptions: process.env.BENCH_NODE_OPTIONS ?? null,
    cpus: (await import('node:os')).cpus().length,
    loadAverage: (await import('node:os')).loadavg()[0],
  };
  try {
    await client.query(`CREATE TABLE users (id bigint PRIMARY KEY, email text, first_name text, last_name text, plan text, created_at timestamptz DEFAULT now())`);
    await client.query(
      `INSERT INTO users (id, email, first_name, last_name, plan) SELECT g, 'user' || g || '@example.com', 'first' || g, 'last' || g, 'plan' || (g % 5) FROM generate_series(1, $1) g`,
      [ROWS],
    );
    await client.query('VACUUM ANALYZE users');
    const dir = path.join(tmpdir(), `wooxy-bench-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    const configFile = path.join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      stringify({
        postgres: { url: url.toString(), slot: `bench_${Date.now().toString(36)}`, publication: 'bench_pub' },
        wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}' },
        snapshot: { chunkSize: CHUNK, progressIntervalMs: 60_000 },
        log: { level: 'warn' },
        mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email', firstName: 'first_name', lastName: 'last_name' }, variables: { plan: 'plan' } }],
      }),
    );

    const idle = await runSnapshot(configFile);
    results.idle = { seconds: idle.seconds, rowsPerSecond: Math.round(ROWS / idle.seconds), peakRssMb: idle.peakRssMb, summary: idle.output.trim().split('\n').at(-1) };

    // Again (a restart from the first key: every contact is known, nothing is queued), with a writer busy
    // on the table all along: the cost of the per-row checks and of taking turns with the stream's writer.
    const writer = new pg.Client(url.toString());
    await writer.connect();
    let stop = false;
    let writes = 0;
    const busy = (async () => {
      while (!stop) {
        const id = 1 + Math.floor(Math.random() * ROWS);
        await writer.query(`UPDATE users SET first_name = 'w' || $2 WHERE id BETWEEN $1 AND $1 + 9`, [id, writes]);
        writes++;
      }
    })();
    const loaded = await runSnapshot(configFile);
    stop = true;
    await busy;
    await writer.end();
    results.underWrites = { seconds: loaded.seconds, rowsPerSecond: Math.round(ROWS / loaded.seconds), peakRssMb: loaded.peakRssMb, writerTransactions: writes, summary: loaded.output.trim().split('\n').at(-1) };
  } finally {
    await client.end();
    await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [db]).catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
    await cluster?.stop('immediate');
  }
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/snapshot-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, JSON.stringify(results, null, 2));
}

await main();
