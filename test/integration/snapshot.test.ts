import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { createLogger } from '../../src/observability/logger.js';
import { desiredOf } from '../../src/outbox/desired.js';
import { SnapshotWriter } from '../../src/outbox/snapshot-writer.js';
import { storeContext } from '../../src/store/context.js';
import { runSnapshot, type RunMode } from '../../src/snapshot/runner.js';
import type { SnapshotChunk } from '../../src/snapshot/types.js';
import { testConfig, testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const ROWS = 50_000;
const INVALID = 10; // rows whose email the vendor rejects: dead-lettered, never blocking the others

interface StateRow {
  source_key: string;
  desired: Record<string, unknown> | null;
}

/**
 * The first start on a table that already holds rows: the snapshot runs beside the stream while another
 * connection updates, deletes and inserts rows, and every contact ends with the projection of its row's
 * latest version (a deleted row with none).
 */
describe('snapshot of existing rows under concurrent writes', () => {
  let tdb: TestDatabase;
  let connector: Connector;

  beforeAll(async () => {
    tdb = await createTestDatabase('snap');
    await tdb.query(USERS_DDL);
    await tdb.query(
      `INSERT INTO users (id, email, first_name, last_name, status)
       SELECT g, CASE WHEN g % ${ROWS / INVALID} = 7 THEN 'not-an-email' ELSE 'user' || g || '@example.com' END, 'f' || g, 'l' || g,
              CASE WHEN g % 10 = 0 THEN 'banned' ELSE 'active' END
       FROM generate_series(1, ${ROWS}) g`,
    );
  });
  afterAll(async () => {
    await connector?.stop();
    await tdb.drop();
  });

  it(`converges: ${ROWS.toLocaleString('en')} rows, updates, deletes and inserts during the snapshot`, async () => {
    const config = testConfig(tdb, {
      snapshot: { onStart: true, chunkSize: 2_000 },
      mappings: [
        {
          table: 'public.users',
          contactListId: 'list-1',
          key: 'id',
          fields: { userId: 'id', email: 'email', firstName: 'first_name', lastName: 'last_name' },
          filter: [{ column: 'status', notEquals: 'banned' }],
        },
      ],
    });
    connector = testConnector(config, { captureOnly: true });
    const finished = async () => {
      const exists = await tdb.query<{ ok: boolean }>(`SELECT to_regclass('wooxy_cdc.snapshot_progress') IS NOT NULL AS ok`);
      if (!exists.rows[0]?.ok) return false; // not migrated yet
      const { rowCount } = await tdb.query(`SELECT 1 FROM wooxy_cdc.snapshot_progress WHERE mapping = 'users' AND finished_at IS NOT NULL`);
      return rowCount === 1;
    };

    // Two writers in their own connections, from before the first chunk until after the last.
    const writers = new pg.Pool({ connectionString: tdb.url, max: 2 });
    writers.on('error', () => undefined);
    let stop = false;
    let during = 0;
    let nextId = ROWS + 1;
    const rnd = (n: number) => 1 + Math.floor(Math.random() * n);
    const workload = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const client = await writers.connect();
        try {
          await client.query('BEGIN');
          await client.query(`SET LOCAL deadlock_timeout = '50ms'`);
          const ids = Array.from({ length: 20 }, () => rnd(ROWS));
          await client.query(`UPDATE users SET first_name = $1 || '-' || id WHERE id = ANY($2::bigint[])`, [`w${w}.${i}`, ids]);
          await client.query(`DELETE FROM users WHERE id = ANY($1::bigint[])`, [[rnd(ROWS), rnd(ROWS), rnd(nextId)]]);
          await client.query(`UPDATE users SET status = CASE status WHEN 'banned' THEN 'active' ELSE 'banned' END WHERE id = ANY($1::bigint[])`, [[rnd(ROWS), rnd(ROWS)]]);
          const fresh = [nextId++, nextId++];
          await client.query(`INSERT INTO users (id, email, first_name) SELECT g, 'new' || g || '@example.com', 'n' FROM unnest($1::bigint[]) g`, [fresh]);
          await client.query('COMMIT');
          if (!(await finished())) during++;
        } catch (e) {
          // The writers' own transactions may deadlock on each other's rows: that one is simply not applied.
          if ((e as { code?: string }).code !== '40P01') throw e;
          await client.query('ROLLBACK');
        } finally {
          client.release();
        }
      }
    };
    const started = connector.start();
    const running = Promise.all([workload(1), workload(2)]);
    try {
      await started;
      await waitFor(finished, { timeoutMs: 120_000, intervalMs: 100, message: 'snapshot finished' });
    } finally {
      stop = true;
      await running.finally(() => writers.end());
    }
    expect(during, 'writes overlapped the snapshot').toBeGreaterThan(5);

    // Quiesce: once a marker row committed after every write is in the state, the stream has everything.
    await tdb.query(`INSERT INTO users (id, email) VALUES (9000000000, 'marker@example.com')`);
    await waitFor(async () => (await tdb.query(`SELECT 1 FROM wooxy_cdc.contact_state WHERE source_key = '9000000000'`)).rowCount === 1, {
      message: 'marker row captured',
    });

    const mapper = connector.mappers[0]!;
    const current = (await tdb.query<Record<string, unknown>>(`SELECT ${mapper.columns.join(', ')} FROM users`)).rows;
    const states = new Map((await tdb.query<StateRow>(`SELECT source_key, desired FROM wooxy_cdc.contact_state`)).rows.map((r) => [r.source_key, r.desired]));
    const pending = new Map(
      (await tdb.query<{ source_key: string; payload: unknown }>(`SELECT source_key, payload FROM wooxy_cdc.outbox WHERE state = 'pending'`)).rows.map((r) => [
        r.source_key,
        r.payload,
      ]),
    );
    const dead = new Set((await tdb.query<{ source_key: string }>(`SELECT source_key FROM wooxy_cdc.dead_letters`)).rows.map((r) => r.source_key));

    const mismatches: string[] = [];
    const seen = new Set<string>();
    for (const row of current) {
      const key = mapper.keyOf(row)!;
      seen.add(key);
      const want = desiredOf(mapper, row);
      if (!want.ok) {
        if (!dead.has(key)) mismatches.push(`${key}: invalid row not dead-lettered`);
        continue;
      }
      const got = states.get(key) ?? null;
      if (JSON.stringify(sorted(got)) !== JSON.stringify(sorted(want.desired))) mismatches.push(`${key}: desired ${JSON.stringify(got)}, row implies ${JSON.stringify(want.desired)}`);
      if (want.desired && JSON.stringify(sorted(pending.get(key))) !== JSON.stringify(sorted(want.desired))) mismatches.push(`${key}: pending ${JSON.stringify(pending.get(key))}`);
    }
    for (const [key, desired] of states) {
      if (!seen.has(key) && desired !== null) mismatches.push(`${key}: deleted at the source but desired ${JSON.stringify(desired)}`);
    }
    let detail = '';
    if (mismatches.length > 0) {
      // What the first one's state says about who wrote it last (stream: xid set; snapshot: lsn = watermark).
      const key = mismatches[0]!.split(':')[0]!;
      const s = await tdb.query(`SELECT lsn::text, xid, updated_at FROM wooxy_cdc.contact_state WHERE source_key = $1`, [key]);
      const p = await tdb.query(`SELECT cursor, chunks_done, watermark::text FROM wooxy_cdc.snapshot_progress`);
      detail = `${mismatches.length} contacts differ; state of ${key}: ${JSON.stringify(s.rows)}; snapshot: ${JSON.stringify(p.rows)}`;
    }
    expect(mismatches.slice(0, 10), detail).toEqual([]);
    expect(current.length).toBeGreaterThan(ROWS * 0.9);
    const invalid = current.filter((r) => !desiredOf(mapper, r).ok).length; // the writers may have deleted some
    expect(invalid).toBeGreaterThan(0);
    expect(dead.size).toBeGreaterThanOrEqual(invalid);
    const progress = (await tdb.query<{ rows_done: string; cursor: string }>(`SELECT rows_done, cursor FROM wooxy_cdc.snapshot_progress`)).rows[0]!;
    expect(Number(progress.rows_done)).toBeGreaterThan(ROWS * 0.9);
  }, 180_000);
});

function sorted(v: unknown): unknown {
  if (v === null || v === undefined || typeof v !== 'object') return v ?? null;
  if (Array.isArray(v)) return v.map(sorted);
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sorted(x)]));
}

/**
 * The races, one at a time: a hook between a chunk's read and its write lets the stream apply a change the
 * read did not see, and the chunk must not undo it.
 */
/**
 * The races between a chunk and the stream, with the connector's state in the source database and in a
 * second one (postgres.stateUrl): there, the read, the source lookup of keys without state and the watermark
 * message go to the source while the decision and the write happen in the state's own transaction.
 */
describe.each([
  { placement: 'state in the source database', apart: false },
  { placement: 'state in another database (postgres.stateUrl)', apart: true },
])('snapshot chunks against the stream, $placement', ({ apart }) => {
  let tdb: TestDatabase;
  /** Where the connector's tables are: tdb itself, or a second database. */
  let sdb: TestDatabase;
  let connector: Connector;
  let writer: SnapshotWriter;
  const log = createLogger({ level: 'silent', pretty: false });

  const state = async (key: string) =>
    (await sdb.query<{ row: Record<string, unknown> | null; desired: Record<string, unknown> | null; synced: unknown; xid: string | null }>(
      `SELECT row, desired, synced, xid FROM wooxy_cdc.contact_state WHERE source_key = $1`,
      [key],
    )).rows[0];
  const pendingOf = async (key: string) =>
    (await sdb.query<{ payload: Record<string, unknown> | null; op_hint: string | null; maybe_ids: unknown }>(
      `SELECT payload, op_hint, maybe_ids FROM wooxy_cdc.outbox WHERE source_key = $1 AND state = 'pending'`,
      [key],
    )).rows[0];
  const run = (afterRead?: (chunk: SnapshotChunk) => Promise<void>, mode: RunMode = { kind: 'snapshot', restart: true }, chunkSize = 3) =>
    runSnapshot({ handle: connector.db, mapper: connector.mappers[0]!, writer, chunkSize, log, afterRead }, mode);

  beforeAll(async () => {
    tdb = await createTestDatabase('snaprace');
    sdb = apart ? await createTestDatabase('snaprace_state') : tdb;
    await tdb.query(USERS_DDL);
    connector = testConnector(testConfig(tdb, { snapshot: { onStart: false }, ...(apart ? { postgres: { stateUrl: sdb.url } } : {}) }), { captureOnly: true });
    await connector.start();
    await waitFor(() => connector.replication?.isStreaming, { message: 'streaming' });
    writer = new SnapshotWriter(storeContext(connector.db), new Map(connector.mappers.map((m) => [m.name, m])));
  });
  afterAll(async () => {
    await connector?.stop();
    await tdb.drop();
    if (apart) await sdb.drop();
  });
  beforeEach(async () => {
    await tdb.query('TRUNCATE users');
    const live = async () => (await sdb.query(`SELECT 1 FROM wooxy_cdc.contact_state WHERE mapping = 'users' AND row IS NOT NULL`)).rowCount;
    await waitFor(async () => (await live()) === 0, { message: 'truncate streamed' });
    await sdb.query('TRUNCATE wooxy_cdc.contact_state, wooxy_cdc.outbox, wooxy_cdc.dead_letters, wooxy_cdc.snapshot_progress');
    // Streamed before each test starts, so the stream is quiet while a test plays its race.
    await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'old' FROM generate_series(1, 6) g`);
    await waitFor(async () => (await live()) === 6, { message: 'rows streamed' });
  });

  it('an update and a delete streamed between the read and the write win over the stale read', async () => {
    let first = true;
    await run(async (chunk) => {
      if (!first) return;
      first = false;
      expect(chunk.rows.map((r) => r.id)).toEqual(['1', '2', '3']);
      await tdb.query(`UPDATE users SET first_name = 'newer' WHERE id = 2`);
      await tdb.query(`DELETE FROM users WHERE id = 3`);
      await waitFor(async () => (await state('2'))?.desired?.firstName === 'newer' && (await state('3'))?.row === null, { message: 'stream applied both' });
    });
    expect((await state('1'))?.desired).toMatchObject({ userId: '1', firstName: 'old' });
    expect((await state('2'))?.desired).toMatchObject({ userId: '2', firstName: 'newer' });
    expect((await pendingOf('2'))?.payload).toMatchObject({ firstName: 'newer' });
    expect((await state('3'))?.desired).toBeNull();
    expect((await state('6'))?.desired).toMatchObject({ userId: '6' });
  });

  it('a reconciling snapshot also removes the contacts whose rows are gone while nothing streamed', async () => {
    // Two contacts whose deletes the stream never saw (a stopped mapping, a lost slot): states without rows.
    await sdb.query(`INSERT INTO wooxy_cdc.contact_state (mapping, source_key, row, desired, synced, lsn)
      SELECT 'users', g::text, jsonb_build_object('id', g::text), jsonb_build_object('userId', g::text), jsonb_build_object('userId', g::text), '0/1'
      FROM generate_series(7, 8) g`);
    await sdb.query(`UPDATE wooxy_cdc.contact_state SET synced = desired WHERE source_key IN ('1', '2')`);
    await sdb.query(`DELETE FROM wooxy_cdc.outbox`);
    const outcome = await run(undefined, { kind: 'snapshot', restart: true, reconcile: true, reason: 'test' }, 4);
    expect(outcome).toMatchObject({ finished: true, reconciled: true, removed: 2 });
    expect(await pendingOf('7')).toMatchObject({ payload: null });
    expect(await pendingOf('8')).toMatchObject({ payload: null });
    expect((await state('7'))?.desired).toBeNull();
    // Rows that are there are left alone: their contacts are what the rows say.
    expect(await pendingOf('1')).toBeUndefined();
    expect((await state('1'))?.desired).toMatchObject({ userId: '1' });
    const progress = (await sdb.query(`SELECT reconcile, phase, removed::int, finished_at IS NOT NULL AS done FROM wooxy_cdc.snapshot_progress`)).rows[0];
    expect(progress).toEqual({ reconcile: true, phase: 'sweep', removed: 2, done: true });
  });

  it("a reconciliation's sweep never removes a row inserted again after its read", async () => {
    await sdb.query(`INSERT INTO wooxy_cdc.contact_state (mapping, source_key, row, desired, synced, lsn)
      VALUES ('users', '9', '{"id":"9"}', '{"userId":"9"}', '{"userId":"9"}', '0/1')`);
    await run(
      undefined,
      { kind: 'snapshot', restart: true, reconcile: true, reason: 'test' },
      100,
    ).then(() => undefined);
    // A fresh run where row 9 comes back between the sweep's read and its write.
    await sdb.query(`DELETE FROM wooxy_cdc.outbox`);
    await sdb.query(`UPDATE wooxy_cdc.contact_state SET row = '{"id":"9"}', desired = '{"userId":"9"}', xid = NULL, lsn = '0/1' WHERE source_key = '9'`);
    await runSnapshot(
      {
        handle: connector.db,
        mapper: connector.mappers[0]!,
        writer,
        chunkSize: 100,
        log,
        afterSweepRead: async (chunk) => {
          expect(chunk.keys).toEqual(['9']);
          await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (9, 'u9@example.com', 'back')`);
          await waitFor(async () => (await state('9'))?.desired?.firstName === 'back', { message: 'the insert streamed' });
        },
      },
      { kind: 'snapshot', restart: true, reconcile: true, reason: 'test' },
    );
    expect((await state('9'))?.desired).toMatchObject({ userId: '9', firstName: 'back' });
    expect((await pendingOf('9'))?.payload).toMatchObject({ firstName: 'back' });
  });

  it('a delete whose state delivery already collected is not undone by the stale read', async () => {
    await run(async (chunk) => {
      if (chunk.rows[0]?.id !== '1') return;
      await tdb.query(`DELETE FROM users WHERE id = 1`);
      await waitFor(async () => (await state('1'))?.row === null, { message: 'delete streamed' });
      // What delivery does for a contact Wooxy never had: the entry is dropped and the state collected.
      await sdb.query(`DELETE FROM wooxy_cdc.outbox WHERE source_key = '1'`);
      await sdb.query(`DELETE FROM wooxy_cdc.contact_state WHERE source_key = '1'`);
    });
    expect(await state('1')).toBeUndefined();
    expect(await pendingOf('1')).toBeUndefined();
    expect((await state('2'))?.desired).toMatchObject({ userId: '2' });
  });

  it('a transaction invisible to the read wins even when its commit LSN precedes the watermark', async () => {
    // A transaction in progress when the chunk is read, as one between writing its commit record and
    // leaving the proc array would be: the read cannot see it. Its stream-written state carries an LSN
    // below the watermark, so only its xid tells the chunk that the stored version is the newer one.
    const open = new pg.Client({ connectionString: tdb.url });
    await open.connect();
    try {
      await open.query('BEGIN');
      const { rows } = await open.query<{ xid: string }>(`SELECT (pg_current_xact_id()::text::bigint % 4294967296)::text AS xid`);
      await run(async (chunk) => {
        if (chunk.rows[0]?.id !== '1') return;
        const set = `UPDATE wooxy_cdc.contact_state SET desired = $1, lsn = '0/1', xid = $2 WHERE mapping = 'users' AND source_key = $3`;
        await sdb.query(set, [{ userId: '1', firstName: 'invisible' }, rows[0]!.xid, '1']);
        // And one the read did see (an old xid): its version is older than the chunk's, which replaces it.
        await sdb.query(set, [{ userId: '2', firstName: 'seen' }, 3, '2']);
      });
    } finally {
      await open.query('ROLLBACK');
      await open.end();
    }
    expect((await state('1'))?.desired).toEqual({ userId: '1', firstName: 'invisible' });
    expect((await state('2'))?.desired).toMatchObject({ userId: '2', firstName: 'old' });
  });

  it('pages text and uuid keys in their own order, each row once', async () => {
    await tdb.query(`CREATE TABLE tags (code text PRIMARY KEY, email text)`);
    await tdb.query(`CREATE TABLE devices (id uuid PRIMARY KEY, email text)`);
    const codes = ['a', 'B', '10', '9', 'é', 'Z z', "o'q", 'a-1', '%', ''];
    await tdb.query(`INSERT INTO tags SELECT c, 'x@example.com' FROM unnest($1::text[]) c`, [codes]);
    await tdb.query(`INSERT INTO devices SELECT gen_random_uuid(), 'x@example.com' FROM generate_series(1, 11)`);
    const mappers = ['tags:code', 'devices:id'].map((spec) => {
      const [table, key] = spec.split(':') as [string, string];
      return compileMapping(testConfig(tdb, { mappings: [{ table, key, contactListId: 'l', fields: { userId: key, email: 'email' } }] }).mappings[0]!);
    });
    const w = new SnapshotWriter(storeContext(connector.db), new Map(mappers.map((m) => [m.name, m])));
    for (const mapper of mappers) {
      const read: string[] = [];
      const out = await runSnapshot(
        { handle: connector.db, mapper, writer: w, chunkSize: 2, log, afterRead: async (c) => void read.push(...c.rows.map((r) => String(r[mapper.key]))) },
        { kind: 'snapshot', restart: false },
      );
      const all = (await tdb.query<{ k: string }>(`SELECT ${mapper.key}::text AS k FROM ${mapper.table} ORDER BY ${mapper.key}`)).rows.map((r) => r.k);
      expect(read).toEqual(all);
      expect(out).toMatchObject({ finished: true, rows: all.length });
      const states = await sdb.query(`SELECT 1 FROM wooxy_cdc.contact_state WHERE mapping = $1 AND desired IS NOT NULL`, [mapper.name]);
      expect(states.rowCount).toBe(all.length);
    }
  });

  it('resync re-sends contacts Wooxy already has, only those matching --where, in a read-only transaction', async () => {
    await run(undefined, { kind: 'snapshot', restart: true }, 100);
    // What delivery records once Wooxy confirmed every contact.
    await sdb.query(`UPDATE wooxy_cdc.contact_state SET synced = desired`);
    await sdb.query(`DELETE FROM wooxy_cdc.outbox`);

    const out = await run(undefined, { kind: 'resync', where: 'id <= 2 -- a trailing comment cannot swallow the rest' }, 100);
    expect(out).toMatchObject({ finished: true, rows: 2, enqueued: 2 });
    for (const key of ['1', '2']) {
      expect(await pendingOf(key)).toEqual({ payload: expect.objectContaining({ userId: key }), op_hint: 'update', maybe_ids: { userId: key, email: `u${key}@example.com` } });
      expect((await state(key))?.synced).toBeNull();
    }
    expect(await pendingOf('3')).toBeUndefined();
    expect((await state('3'))?.synced).toMatchObject({ userId: '3' });

    // The rows are read in READ ONLY transactions (a stable function can see it) ...
    await sdb.query(`DELETE FROM wooxy_cdc.outbox`);
    const readOnly = await run(undefined, { kind: 'resync', where: `id <= 2 AND current_setting('transaction_read_only') = 'on'` }, 100);
    expect(readOnly).toMatchObject({ finished: true, rows: 2 });
    // ... and a volatile function is refused before any is read.
    await tdb.query(`CREATE SEQUENCE IF NOT EXISTS side_effect`);
    await expect(run(undefined, { kind: 'resync', where: `nextval('side_effect') > 0` }, 100)).rejects.toMatchObject({ code: 'USAGE_INVALID' });
    await expect(run(undefined, { kind: 'resync', where: `no_such_column = 1` }, 100)).rejects.toMatchObject({ code: '42703' });
  });

  it('respects the filter: a row that does not match has no desired payload and no outbox entry', async () => {
    await tdb.query(`UPDATE users SET status = 'banned' WHERE id = 4`);
    const filtered = compileMapping(
      testConfig(tdb, { mappings: [{ table: 'users', name: 'active_users', contactListId: 'l', fields: { userId: 'id' }, filter: [{ column: 'status', equals: 'active' }] }] }).mappings[0]!,
    );
    const w = new SnapshotWriter(storeContext(connector.db), new Map([[filtered.name, filtered]]));
    await runSnapshot({ handle: connector.db, mapper: filtered, writer: w, chunkSize: 4, log }, { kind: 'snapshot', restart: true });
    const rows = (await sdb.query<{ source_key: string; desired: unknown }>(`SELECT source_key, desired FROM wooxy_cdc.contact_state WHERE mapping = 'active_users' ORDER BY source_key`)).rows;
    expect(rows.map((r) => [r.source_key, r.desired === null])).toEqual([['1', false], ['2', false], ['3', false], ['4', true], ['5', false], ['6', false]]);
    const queued = (await sdb.query<{ source_key: string }>(`SELECT source_key FROM wooxy_cdc.outbox WHERE mapping = 'active_users' ORDER BY source_key`)).rows;
    expect(queued.map((r) => r.source_key)).toEqual(['1', '2', '3', '5', '6']);
  });
});
