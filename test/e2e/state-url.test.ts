import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { lockHolder } from '../../src/ha/leader.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { createLogger } from '../../src/observability/logger.js';
import { testConfig, testConnector } from '../helpers/connector.js';
import { projectionDiff } from '../helpers/converge.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'state-url-list';
const DDL = `CREATE TABLE users (id bigint PRIMARY KEY, email text, first_name text, plan text)`;
const FIELDS = { userId: 'id', email: 'email', firstName: 'first_name' };

/**
 * postgres.stateUrl: the connector's tables and its leader lock in a second database. The source keeps only
 * what replication needs (the slot, the publication) and gets no connector table; the snapshot reads the
 * source while the stream runs; the slot is acknowledged only once the state's transaction has committed over
 * there; and a leader that loses its lock in the state database stops, while the next one takes over.
 */
describe('the state in another database (postgres.stateUrl)', () => {
  let source: TestDatabase;
  let state: TestDatabase;
  let emulator: Emulator;
  let connector: Connector | undefined;
  const lines: string[] = [];

  const config = () =>
    testConfig(source, {
      postgres: { stateUrl: state.url, monitorIntervalMs: 200, heartbeatIntervalMs: 200 },
      wooxy: { accessToken: 'tok', baseUrl: emulator.url, timeoutMs: 2_000 },
      snapshot: { onStart: true, chunkSize: 7 },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      ha: { pollIntervalMs: 100 },
      log: { level: 'info' },
      mappings: [{ table: 'public.users', contactListId: LIST, key: 'id', fields: FIELDS }],
    });
  const start = async () => {
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        done();
      },
    });
    const c = testConnector(config(), { log: createLogger({ level: 'info', destination }) });
    await c.start();
    return c;
  };
  const converged = async () => {
    const mapper = compileMapping(config().mappings[0]!);
    await waitFor(
      async () => {
        const open = await state.query<{ n: number }>(`SELECT ((SELECT count(*) FROM wooxy_cdc.outbox) + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new'))::int AS n`);
        if (open.rows[0]!.n !== 0) return false;
        return projectionDiff((await source.query('SELECT * FROM users')).rows, mapper, emulator).length === 0;
      },
      { timeoutMs: 40_000, intervalMs: 100, message: 'the list equals the table' },
    ).catch(async (e: Error) => {
      const diff = projectionDiff((await source.query('SELECT * FROM users')).rows, mapper, emulator);
      throw new Error(`${e.message}\n${diff.slice(0, 10).join('\n')}\n--- log ---\n${lines.slice(-30).join('\n')}`);
    });
  };
  /** lockHolder takes a pg client; the test databases' query has the same shape for what it asks. */
  const holderIn = (db: TestDatabase) => lockHolder({ query: db.query } as unknown as pg.Client, source.slot);
  const slotPosition = async () =>
    (await source.query<{ confirmed: string }>(`SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`, [source.slot])).rows[0]!.confirmed;
  const lsnLess = async (a: string, b: string) => (await source.query<{ lt: boolean }>('SELECT $1::pg_lsn < $2::pg_lsn AS lt', [a, b])).rows[0]!.lt;

  beforeAll(async () => {
    source = await createTestDatabase('src');
    state = await createTestDatabase('state');
    await source.query(DDL);
    await source.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'First ' || g FROM generate_series(1, 40) g`);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: LIST }], processing: { delayMs: 10 } });
  });
  afterAll(async () => {
    await connector?.stop();
    await emulator?.close();
    await source?.drop();
    await state?.drop();
  });

  it('snapshots and streams into the state database, and the source holds none of its tables', async () => {
    connector = await start();
    await waitFor(() => connector?.replication?.isStreaming, { message: 'streaming' });
    // Changes while the snapshot runs: the stream and the chunks meet in the state database.
    await source.query(`UPDATE users SET first_name = 'Renamed' WHERE id % 3 = 0`);
    await source.query(`DELETE FROM users WHERE id % 5 = 0`);
    await source.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'Late ' || g FROM generate_series(41, 60) g`);
    await converged();
    expect(emulator.contacts(LIST)).toHaveLength(60 - 8);

    const schemaIn = async (db: TestDatabase) => (await db.query<{ s: string | null }>(`SELECT to_regnamespace('wooxy_cdc')::text AS s`)).rows[0]!.s;
    expect(await schemaIn(source)).toBeNull();
    expect(await schemaIn(state)).toBe('wooxy_cdc');
    const progress = await state.query(`SELECT mapping, finished_at IS NOT NULL AS done FROM wooxy_cdc.snapshot_progress`);
    expect(progress.rows).toEqual([{ mapping: 'users', done: true }]);
    // The leader lock is taken where the fence is: in the state database.
    expect(await holderIn(state)).not.toBeNull();
    expect(await holderIn(source)).toBeNull();
  });

  it('acknowledges the slot only after the state database committed the changes', async () => {
    await converged();
    // The state database refuses the capture's writes for a while: a lock on the durable LSN's table.
    const blocker = new pg.Client(state.url);
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE wooxy_cdc.replication_state IN ACCESS EXCLUSIVE MODE');
      await source.query(`UPDATE users SET first_name = 'While blocked' WHERE id = 1`);
      const after = (await source.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
      // The capture has the change and waits on the lock to make it durable …
      await waitFor(
        async () =>
          (await state.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`)).rows[0]!.n > 0,
        { timeoutMs: 20_000, message: "the capture's write waits on the state database's lock" },
      );
      // … and the connector has been sent a later commit (a heartbeat-like message): none of them may move the
      // slot past a change the state has not committed.
      const later = (await source.query<{ l: string }>(`SELECT pg_logical_emit_message(true, 'state-url-test', 'later')::text AS l`)).rows[0]!.l;
      await waitFor(
        async () =>
          (
            await source.query<{ ok: boolean }>(
              `SELECT COALESCE(bool_or(r.sent_lsn >= $2::pg_lsn), false) AS ok FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = $1`,
              [source.slot, later],
            )
          ).rows[0]!.ok,
        { timeoutMs: 20_000, message: 'the walsender sent the connector a commit after the change' },
      );
      expect(await lsnLess(await slotPosition(), after)).toBe(true);
      await blocker.query('COMMIT');
      await waitFor(async () => !(await lsnLess(await slotPosition(), after)), { timeoutMs: 20_000, message: 'the slot moves once the state commits' });
    } finally {
      await blocker.end();
    }
    await converged();
    expect(emulator.contacts(LIST)?.find((c) => String(c.userId) === '1')).toMatchObject({ firstName: 'While blocked' });
  });

  it('a leader whose lock session in the state database ends stops; the next instance carries on', async () => {
    const standby = await start();
    try {
      await waitFor(() => standby.role === 'standby', { message: 'the second instance waits' });
      const holder = await holderIn(state);
      await state.query('SELECT pg_terminate_backend($1)', [holder!.pid]);
      await waitFor(() => standby.role === 'leader' && standby.replication?.isStreaming, { timeoutMs: 30_000, message: 'the standby takes over' });
      await source.query(`UPDATE users SET first_name = 'After failover' WHERE id = 2`);
      await converged();
      expect(emulator.contacts(LIST)?.find((c) => String(c.userId) === '2')).toMatchObject({ firstName: 'After failover' });
    } finally {
      await connector?.stop();
      connector = standby;
    }
  });
});
