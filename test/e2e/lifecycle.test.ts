import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { createLogger } from '../../src/observability/logger.js';
import { testConfig, testConnector } from '../helpers/connector.js';
import { projectionDiff } from '../helpers/converge.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'lifecycle-list';
const FIELDS = { userId: 'id', email: 'email', firstName: 'first_name', lastName: 'last_name' };
const DDL = `CREATE TABLE users (id bigint PRIMARY KEY, email text, first_name text, last_name text, plan text)`;

/**
 * The operational lifecycle of a running connector: schema changes, a changed mapping, a slot or publication
 * lost, a table dropped and created again. Whatever happens, the list must end equal to the table — deleted
 * rows removed — and every gap must be named in the log and the metrics, never papered over.
 */
describe('lifecycle', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector | undefined;
  let lines: string[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase('life');
  });
  afterAll(async () => tdb.drop());
  beforeEach(async () => {
    await tdb.reset(DDL);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: LIST }, { id: 'other-list' }], processing: { delayMs: 10 } });
    lines = [];
  });
  afterEach(async () => {
    await connector?.stop();
    connector = undefined;
    await emulator.close();
    const admin = new pg.Client(tdb.url);
    await admin.connect();
    await admin.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, [tdb.slot]).catch(() => undefined);
    await admin.end();
  });

  const configFor = (fields: Record<string, unknown> = FIELDS, extra: Record<string, unknown> = {}) =>
    testConfig(tdb, {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc', monitorIntervalMs: 200, ...(extra.postgres as object) },
      wooxy: { accessToken: 'tok', baseUrl: emulator.url, timeoutMs: 2_000 },
      snapshot: { onStart: true, chunkSize: 50 },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      log: { level: 'info' },
      mappings: [{ table: 'public.users', contactListId: (extra.list as string) ?? LIST, key: 'id', fields }],
    });
  const start = async (fields: Record<string, unknown> = FIELDS, extra: Record<string, unknown> = {}) => {
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        done();
      },
    });
    const config = configFor(fields, extra);
    const c = (connector = testConnector(config, { log: createLogger({ level: 'info', destination }) }));
    await c.start();
    await waitFor(() => c.replication?.isStreaming, { message: 'streaming' });
    return c;
  };
  const stop = async () => {
    await connector?.stop();
    connector = undefined;
  };
  const logged = (re: RegExp) => lines.some((l) => re.test(l));
  const converged = async (fields: Record<string, unknown> = FIELDS, list = LIST) => {
    const mapper = compileMapping(configFor(fields, { list }).mappings[0]!);
    await waitFor(
      async () => {
        const open = await tdb.query<{ n: number }>(`SELECT ((SELECT count(*) FROM wooxy_cdc.outbox) + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new'))::int AS n`);
        if (open.rows[0]!.n !== 0) return false;
        return projectionDiff((await tdb.query('SELECT * FROM users')).rows, mapper, emulator).length === 0;
      },
      { timeoutMs: 40_000, intervalMs: 100, message: 'the list equals the table' },
    ).catch(async (e: Error) => {
      const diff = projectionDiff((await tdb.query('SELECT * FROM users')).rows, mapper, emulator);
      throw new Error(`${e.message}\n${diff.slice(0, 10).join('\n')}\n--- log ---\n${lines.slice(-30).join('\n')}`);
    });
  };
  const seed = async (n: number) => tdb.query(`INSERT INTO users (id, email, first_name, last_name) SELECT g, 'u' || g || '@example.com', 'First ' || g, 'Last ' || g FROM generate_series(1, ${n}) g`);
  const inList = () => new Set((emulator.contacts(LIST) ?? []).map((c) => String(c.userId)));

  it('a compatible type change keeps the mapping flowing (text → varchar(100)), and says so', async () => {
    await seed(10);
    // Every column published: PostgreSQL refuses to retype a column in a publication's column list.
    const c = await start(FIELDS, { postgres: { publishColumns: 'all' } });
    await converged();
    await tdb.query('ALTER TABLE users ALTER COLUMN first_name TYPE varchar(100)');
    await tdb.query(`UPDATE users SET first_name = 'Renamed' WHERE id <= 3`);
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (11, 'u11@example.com', 'New')`);
    await converged();
    expect(c.replication?.stoppedMappings.size).toBe(0);
    expect(logged(/changed type text → character varying; the mapping reads it as before/)).toBe(true);
  });

  it('a dropped mapped column stops the mapping; what changes meanwhile is reconciled once the mapping is fixed, deleted rows removed', async () => {
    await seed(20);
    const c = await start(FIELDS, { postgres: { publishColumns: 'all' } });
    await converged();
    await tdb.query('ALTER TABLE users DROP COLUMN last_name');
    await tdb.query(`UPDATE users SET first_name = first_name WHERE id = 1`); // a change that carries the new shape
    await waitFor(() => c.replication?.stoppedMappings.has('users'), { message: 'the mapping stops' });
    expect(logged(/"code":"MAPPING_SCHEMA_CHANGED".*mapping users stopped: column public\.users\.last_name no longer exists/)).toBe(true);
    // While it is stopped: deletes, inserts, email changes.
    await tdb.query(`DELETE FROM users WHERE id IN (3, 4, 5)`);
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (21, 'u21@example.com', 'New'), (22, 'u22@example.com', 'New')`);
    await tdb.query(`UPDATE users SET email = 'changed' || id || '@example.com' WHERE id IN (6, 7)`);
    await stop();

    // A restart with the mapping as it was: it stays stopped, and the stop is remembered.
    lines = [];
    await start(FIELDS, { postgres: { publishColumns: 'all' } });
    expect(connector!.replication?.stoppedMappings.has('users')).toBe(true);
    expect(logged(/mapping users cannot run: .*last_name.*It stays stopped/)).toBe(true);
    expect(inList().has('3')).toBe(true);
    await stop();

    // A changed mapping (a field added) that still reads the dropped column: stopped too, not a configuration
    // error — the column went from the table, not from the operator's hand.
    lines = [];
    await start({ ...FIELDS, name: { value: 'Changed meanwhile' } }, { postgres: { publishColumns: 'all' } });
    expect(connector!.replication?.stoppedMappings.has('users')).toBe(true);
    expect(logged(/mapping users cannot run: .*last_name.*It stays stopped/)).toBe(true);
    await stop();
    // A changed mapping naming a column the table never had is the configuration's mistake: the start fails.
    await expect(start({ ...FIELDS, firstName: 'frist_name' }, { postgres: { publishColumns: 'all' } })).rejects.toThrow(/column frist_name does not exist/);
    await stop();

    // The mapping fixed: it runs again and reconciles what it skipped.
    lines = [];
    const { lastName: _dropped, ...fixed } = FIELDS;
    await start(fixed, { postgres: { publishColumns: 'all' } });
    await converged(fixed);
    expect([...inList()].sort()).not.toEqual(expect.arrayContaining(['3', '4', '5']));
    expect(inList().has('21')).toBe(true);
    expect(logged(/mapping users it had stopped at .* runs again: reconciling what was skipped meanwhile/)).toBe(true);
    expect(logged(/reconciliation of users finished: .* 3 removal\(s\) of rows gone/)).toBe(true);
  });

  it('a mapped column dropped and added again, with no change in between, is noticed and reconciled (its values are gone)', async () => {
    await seed(12);
    await start(FIELDS, { postgres: { publishColumns: 'all' } });
    await converged();
    // No row changes: the stream sees nothing, yet every last_name is NULL now.
    await tdb.query('ALTER TABLE users DROP COLUMN last_name');
    await tdb.query('ALTER TABLE users ADD COLUMN last_name text');
    await converged();
    expect((emulator.contacts(LIST) ?? []).every((c) => !c.lastName)).toBe(true);
    expect(logged(/column last_name was dropped and added again \(its values changed without row changes\): reconciling/)).toBe(true);

    // The same while no connector runs: told at start.
    await stop();
    await tdb.query(`UPDATE users SET last_name = 'Set while running' WHERE id <= 3`);
    await start(FIELDS, { postgres: { publishColumns: 'all' } });
    await converged();
    await stop();
    await tdb.query('ALTER TABLE users DROP COLUMN last_name');
    await tdb.query('ALTER TABLE users ADD COLUMN last_name text');
    lines = [];
    await start(FIELDS, { postgres: { publishColumns: 'all' } });
    await converged();
    expect((emulator.contacts(LIST) ?? []).every((c) => !c.lastName)).toBe(true);
  });

  it('a column dropped and added again while stopped: the changes from before it, replayed at start, never overwrite what the reconciliation read', async () => {
    await seed(200);
    await start(FIELDS, { postgres: { publishColumns: 'all' } });
    await converged();
    await stop();
    // A backlog in the slot from before the DDL, carrying the old column's values; then the column's values gone.
    for (let round = 0; round < 5; round++) await tdb.query(`UPDATE users SET last_name = 'Before ${round} ' || id`);
    await tdb.query('ALTER TABLE users DROP COLUMN last_name');
    await tdb.query('ALTER TABLE users ADD COLUMN last_name text');
    lines = [];
    await start(FIELDS, { postgres: { publishColumns: 'all' } });
    await converged();
    expect((emulator.contacts(LIST) ?? []).filter((c) => c.lastName).map((c) => `${String(c.userId)}: ${String(c.lastName)}`)).toEqual([]);
    expect(logged(/reconciliation of users waits for the stream to reach/)).toBe(true);
  });

  it('a field added to the mapping reaches every existing contact, and the log says what changed', async () => {
    await seed(30);
    await start();
    await converged();
    await stop();
    lines = [];
    const withActive = { ...FIELDS, active: { value: true } };
    await start(withActive);
    expect(logged(/mapping users changed \(fields\.active added\): re-syncing 30 contacts/), lines.join('\n')).toBe(true);
    await converged(withActive);
    expect((emulator.contacts(LIST) ?? []).every((c) => c.active === true)).toBe(true);
  });

  it('a changed contactListId sends the contacts to the new list and leaves the old one as it is', async () => {
    await seed(5);
    await start();
    await converged();
    await stop();
    lines = [];
    await start(FIELDS, { list: 'other-list' });
    expect(logged(/now syncs to list other-list: its contacts are sent there; list lifecycle-list is left as it is/)).toBe(true);
    await converged(FIELDS, 'other-list');
    expect(emulator.contacts(LIST)).toHaveLength(5);
  });

  it('a slot dropped while the connector runs is created again, named, and every mapping reconciled', async () => {
    await seed(20);
    const c = await start();
    await converged();
    const admin = new pg.Client(tdb.url);
    await admin.connect();
    try {
      await admin.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`, [tdb.slot]);
      await waitFor(async () => (await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [tdb.slot])).rowCount === 1, {
        message: 'slot dropped',
      });
      // Changes no slot records.
      await admin.query(`DELETE FROM users WHERE id IN (1, 2)`);
      await admin.query(`INSERT INTO users (id, email, first_name) VALUES (50, 'u50@example.com', 'Gap')`);
      await admin.query(`UPDATE users SET first_name = 'In the gap' WHERE id = 3`);
    } finally {
      await admin.end();
    }
    await converged();
    expect(logged(/"code":"SLOT_LOST".*is gone .*every mapping is reconciled/)).toBe(true);
    expect((await c.metrics.sourceGaps.get()).values).toEqual([expect.objectContaining({ labels: { code: 'SLOT_LOST' }, value: 1 })]);
  });

  it('a slot dropped while the connector was stopped: reconciled at start with autoCreate, refused with the SQL without it', async () => {
    await seed(10);
    await start();
    await converged();
    await stop();
    await tdb.query(`SELECT pg_drop_replication_slot($1)`, [tdb.slot]);
    await tdb.query(`DELETE FROM users WHERE id = 1`);
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (40, 'u40@example.com', 'While stopped')`);

    const refused = testConnector({ ...configFor(), postgres: { ...configFor().postgres, autoCreate: false } });
    await expect(refused.start()).rejects.toMatchObject({
      code: 'PG_SLOT_LOST',
      message: expect.stringMatching(/is gone .* Run:\n {2}SELECT pg_create_logical_replication_slot.*reconciles every mapping/s),
    });
    await refused.stop();

    lines = [];
    await start();
    await converged();
    expect(logged(/"code":"SLOT_LOST"/)).toBe(true);
    expect(inList().has('1')).toBe(false);
  });

  it('a dropped publication is created again, with the slot, and every mapping reconciled', async () => {
    await seed(10);
    await start();
    await converged();
    await tdb.query(`DROP PUBLICATION ${tdb.publication}`);
    await tdb.query(`DELETE FROM users WHERE id = 2`);
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (60, 'u60@example.com', 'After the drop')`);
    await converged();
    // Whichever notices first — the stream failing to decode, or the table watch seeing the table unpublished —
    // the publication and the slot are created again and every mapping reconciled.
    expect(logged(/the publication was dropped; repaired|left publication .*publishing it again/)).toBe(true);
    expect(logged(/"code":"PUBLICATION_LOST"/)).toBe(true);
  });

  it('a mapped table dropped and created again: noticed, named, and reconciled (the contacts of its old rows removed)', async () => {
    await seed(30);
    const c = await start();
    await converged();
    await tdb.query('DROP TABLE users');
    await waitFor(() => c.replication?.stoppedMappings.get('users') === 'table "public"."users" was dropped', { message: 'the mapping stops' });
    expect(logged(/"code":"MAPPING_TABLE_DROPPED".*mapping users stopped: table \\"public\\"\.\\"users\\" was dropped/)).toBe(true);
    await tdb.query(DDL);
    await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'n' || g || '@example.com', 'Reborn' FROM generate_series(100, 119) g`);
    await converged();
    expect([...inList()].sort()).toEqual(Array.from({ length: 20 }, (_, i) => String(100 + i)).sort());
    expect(logged(/exists again \(a new table\): the pipeline starts over/)).toBe(true);
  });
});
