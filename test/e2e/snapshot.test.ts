import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runCli, startConnectorProcess, writeConfig, type RunningConnector } from '../helpers/child.js';
import { USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

interface Progress {
  cursor: string | null;
  rows_done: string;
  chunks_done: number;
  started_at: Date;
  finished_at: Date | null;
  watermark: string | null;
}

const baseConfig = (tdb: TestDatabase, chunkSize: number) => ({
  postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
  wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: 'http://127.0.0.1:9/v3' },
  capture: { flushIntervalMs: 10 },
  snapshot: { chunkSize },
  http: { port: 0 },
  mappings: [{ table: 'public.users', contactListId: 'list-1', fields: { userId: 'id', email: 'email', firstName: 'first_name' } }],
});
const env = { WOOXY_ACCESS_TOKEN: 'tok' };

describe('a snapshot killed halfway', () => {
  let tdb: TestDatabase;
  let running: RunningConnector | undefined;

  beforeAll(async () => {
    tdb = await createTestDatabase('snapkill');
    await tdb.query(USERS_DDL);
    await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'f' || g FROM generate_series(1, 10000) g`);
  });
  afterAll(async () => {
    running?.proc.kill('SIGKILL');
    await running?.exited;
    await tdb.drop();
  });

  const progress = async () => (await tdb.query<Progress>(`SELECT *, watermark::text AS watermark FROM wooxy_cdc.snapshot_progress WHERE mapping = 'users'`)).rows[0];
  const count = async (sql: string) => (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`)).rows[0]!.n;

  it('resumes from its persisted cursor on restart, without reading the first chunks again', async () => {
    const configFile = writeConfig(baseConfig(tdb, 1000));
    const first = startConnectorProcess(configFile, { ...env, WOOXY_CDC_FAILPOINT: 'snapshot.after-chunk:3' });
    running = first;
    expect(await first.exited).toMatchObject({ signal: 'SIGKILL' });

    const killed = (await progress())!;
    expect(killed).toMatchObject({ cursor: '3000', rows_done: '3000', chunks_done: 3, finished_at: null });
    expect(await count(`wooxy_cdc.contact_state`)).toBe(3000);
    expect(await count(`wooxy_cdc.contact_state WHERE source_key::int > 3000`)).toBe(0);
    expect(await count(`wooxy_cdc.outbox`)).toBe(3000);

    const second = startConnectorProcess(configFile, env);
    running = second;
    await waitFor(async () => (await progress())?.finished_at, { timeoutMs: 60_000, message: 'snapshot finished' }).catch((e: Error) => {
      throw new Error(`${e.message}\n${second.output()}`);
    });
    await waitFor(() => /snapshot of users finished/.test(second.output()), { message: `the run logged its end\n${second.output()}` });
    const done = (await progress())!;
    // The same run of the snapshot (not restarted), continued after key 3000: seven more chunks were read.
    expect(done).toMatchObject({ rows_done: '10000', chunks_done: 10 });
    expect(done.started_at).toEqual(killed.started_at);
    expect(second.output()).toMatch(/snapshot of users resumed after key 3000/);
    expect(second.output()).toMatch(/snapshot of users finished: 7 chunk\(s\), 7000 row\(s\) read/);
    expect(await count(`wooxy_cdc.contact_state WHERE desired IS NOT NULL`)).toBe(10000);
    expect(await count(`wooxy_cdc.outbox WHERE state = 'pending' AND payload IS NOT NULL`)).toBe(10000);
    // Delivery waits for the durable LSN to pass each chunk's watermark; nothing else writes, so the
    // chunks' own logical messages must carry the stream past it.
    await waitFor(
      async () =>
        (await tdb.query<{ ok: boolean }>(`SELECT durable_lsn >= $1::pg_lsn AS ok FROM wooxy_cdc.replication_state`, [done.watermark])).rows[0]?.ok,
      { message: 'durable LSN past the last watermark' },
    );
    second.proc.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    running = undefined;
  });
});

describe('wooxy-cdc snapshot and resync', () => {
  let tdb: TestDatabase;
  let configFile: string;
  let holder: pg.Client | undefined;

  beforeAll(async () => {
    tdb = await createTestDatabase('snapcli');
    await tdb.query(USERS_DDL);
    await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'f' || g FROM generate_series(1, 2000) g`);
    configFile = writeConfig(baseConfig(tdb, 500));
  });
  afterEach(async () => {
    await holder?.end();
    holder = undefined;
  });
  afterAll(async () => tdb.drop());

  const startedAt = async () => (await tdb.query<{ t: Date }>(`SELECT started_at AS t FROM wooxy_cdc.snapshot_progress`)).rows[0]?.t;

  it('snapshot reads every row into the outbox (exit 0), and a second run starts over and queues nothing new', async () => {
    const r = await runCli(['snapshot', '--config', configFile], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/snapshot users: 2,000 rows in [\d.]+s \([\d,]+ rows\/s\), 2,000 queued, 0 dead-lettered/);
    expect(r.stdout).toMatch(/"msg":"snapshot of users done: 2,000 rows/); // the progress log line (no terminal)
    const first = await startedAt();
    expect((await tdb.query(`SELECT 1 FROM wooxy_cdc.outbox WHERE state = 'pending'`)).rowCount).toBe(2000);

    const again = await runCli(['snapshot', '--config', configFile, '--mapping', 'users', '--chunk-size', '700'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/snapshot users: 2,000 rows .*, 0 queued/);
    expect((await startedAt())!.getTime()).toBeGreaterThan(first!.getTime());
  });

  it('exits 2 for an unknown mapping, 1 when another process holds the snapshot', async () => {
    const unknown = await runCli(['snapshot', '--config', configFile, '--mapping', 'nope'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--mapping nope: no such mapping \(configured: users\)/);

    holder = new pg.Client({ connectionString: tdb.url });
    await holder.connect();
    await holder.query(`SELECT pg_advisory_lock(hashtext('wooxy_cdc/users'), ${0x57_43_02})`);
    const busy = await runCli(['snapshot', '--config', configFile], env);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/\[SNAPSHOT_BUSY\] a snapshot of mapping users is running in another process/);
  });

  it('resync re-sends the contacts matching --where, even unchanged ones (exit 0); a bad predicate exits 2', async () => {
    // What delivery records once Wooxy confirmed every contact: nothing left to send.
    await tdb.query(`UPDATE wooxy_cdc.contact_state SET synced = desired`);
    await tdb.query(`DELETE FROM wooxy_cdc.outbox`);
    const r = await runCli(['resync', '--config', configFile, '--mapping', 'users', '--where', 'id % 100 = 0'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resync users: 20 rows .*, 20 queued/);
    const pending = await tdb.query<{ source_key: string; op_hint: string }>(`SELECT source_key, op_hint FROM wooxy_cdc.outbox ORDER BY source_key::int`);
    expect(pending.rows.map((p) => p.source_key)).toEqual(Array.from({ length: 20 }, (_, i) => String((i + 1) * 100)));
    expect(new Set(pending.rows.map((p) => p.op_hint))).toEqual(new Set(['update']));

    const bad = await runCli(['resync', '--config', configFile, '--mapping', 'users', '--where', 'no_such_column > 1'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--where "no_such_column > 1": column "no_such_column" does not exist/);
    await tdb.query(`CREATE SEQUENCE side_effect`);
    const writes = await runCli(['resync', '--config', configFile, '--mapping', 'users', '--where', "nextval('side_effect') > 0"], env);
    expect(writes.code).toBe(2);
    expect(writes.stderr).toMatch(/calls nextval\(regclass\), declared VOLATILE/);
    expect((await tdb.query<{ v: string }>(`SELECT last_value::text AS v, is_called FROM side_effect`)).rows[0]).toMatchObject({ v: '1', is_called: false });
  });
});
