import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/loader.js';
import { Connector } from '../../src/connector.js';
import { LocalCluster } from '../../src/db/local-cluster.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { createLogger } from '../../src/observability/logger.js';
import { projectionDiff } from '../helpers/converge.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A slot Postgres invalidated for retaining too much WAL (max_slot_wal_keep_size) can never be read again:
 * the changes it held are gone. The connector must say so, and — with autoCreate — create the slot again and
 * reconcile every mapping; without it, refuse naming the SQL. Its own cluster: the setting and the checkpoint
 * that invalidates would reach the other suites' slots.
 */
describe('an invalidated slot', () => {
  let cluster: LocalCluster;
  let emulator: Emulator;
  let db: pg.Client;
  beforeAll(async () => {
    cluster = await LocalCluster.start({ settings: { max_slot_wal_keep_size: '1MB' } });
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: 'l' }], processing: { delayMs: 10 } });
    db = new pg.Client(cluster.url());
    db.on('error', () => undefined);
    await db.connect();
    await db.query(`CREATE TABLE users (id bigint PRIMARY KEY, email text, first_name text)`);
    await db.query(`CREATE TABLE filler (id bigint, pad text)`);
  });
  afterAll(async () => {
    await db.end().catch(() => undefined);
    await emulator.close();
    await cluster.stop('immediate');
  });

  const MAPPING = { table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email', firstName: 'first_name' } };
  const config = (autoCreate = true) =>
    parseConfig(
      {
        postgres: { url: cluster.url(), slot: 'inval_slot', publication: 'inval_pub', autoCreate },
        wooxy: { accessToken: 'tok', baseUrl: emulator.url },
        capture: { flushIntervalMs: 10 },
        delivery: { idleIntervalMs: 20 },
        reconcile: { pollIntervalMs: 100 },
        http: { port: 0 },
        mappings: [MAPPING],
      },
      {},
    );
  const lines: string[] = [];
  const connector = (autoCreate = true) =>
    new Connector({
      config: config(autoCreate),
      log: createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...c.toString().split('\n').filter(Boolean)), cb()) }) }),
    });
  const converged = (mapper = compileMapping(config().mappings[0]!)) =>
    waitFor(
      async () => {
        const open = await db.query<{ n: number }>(`SELECT ((SELECT count(*) FROM wooxy_cdc.outbox) + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new'))::int AS n`);
        return open.rows[0]!.n === 0 && projectionDiff((await db.query('SELECT * FROM users')).rows, mapper, emulator).length === 0;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: `the list equals the table\n${lines.slice(-20).join('\n')}` },
    );

  it('is named, created again with autoCreate (refused with the SQL without it), and every mapping reconciled', async () => {
    await db.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'Before' FROM generate_series(1, 20) g`);
    const first = connector();
    await first.start();
    await converged();
    await first.stop();

    // While no connector runs: changes, then far more WAL than the slot may keep, and a checkpoint.
    await db.query(`DELETE FROM users WHERE id IN (1, 2, 3)`);
    await db.query(`UPDATE users SET first_name = 'Lost in the gap' WHERE id = 4`);
    await db.query(`INSERT INTO filler SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 60000) g`);
    await db.query(`SELECT pg_switch_wal()`);
    await db.query(`CHECKPOINT`);
    await waitFor(async () => (await db.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'inval_slot'`)).rows[0]?.wal_status === 'lost', {
      timeoutMs: 30_000,
      message: 'the slot invalidated',
    });

    const refused = connector(false);
    await expect(refused.start()).rejects.toMatchObject({
      code: 'PG_SLOT_INVALIDATED',
      message: expect.stringContaining(`SELECT pg_drop_replication_slot('inval_slot'); SELECT pg_create_logical_replication_slot('inval_slot', 'pgoutput');`),
    });
    await refused.stop();

    const second = connector();
    await second.start();
    await converged();
    expect(lines.some((l) => /"code":"SLOT_INVALIDATED".*was invalidated/.test(l))).toBe(true);
    expect((await second.metrics.sourceGaps.get()).values).toEqual([expect.objectContaining({ labels: { code: 'SLOT_INVALIDATED' }, value: 1 })]);
    expect((emulator.contacts('l') ?? []).find((c) => c.userId === '4')).toMatchObject({ firstName: 'Lost in the gap' });
    await second.stop();
  });
});
