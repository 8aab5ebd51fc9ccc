/**
 * `resync --where` keeps the README's promise: it reads rows and queues contacts, nothing else. Each refused
 * predicate below did its harm before the guard (a large object imported from the server's disk, a slot left
 * behind retaining WAL, a backend terminated, a query widened to every row); each test checks the harm is
 * absent, not only the exit code.
 */
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli, writeConfig } from '../helpers/child.js';
import { USERS_DDL } from '../helpers/connector.js';
import { adminQuery, createTestDatabase, type TestDatabase } from '../helpers/pg.js';

const env = { WOOXY_ACCESS_TOKEN: 'tok' };

describe('resync --where guards', () => {
  let tdb: TestDatabase;
  let configFile: string;
  const resync = (where: string) => runCli(['resync', '--config', configFile, '--mapping', 'users', '--where', where], env);
  const queued = async () => (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox`)).rows[0]!.n;

  beforeAll(async () => {
    tdb = await createTestDatabase('where');
    await tdb.query(USERS_DDL);
    await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'f' || g FROM generate_series(1, 2000) g`);
    configFile = writeConfig({
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: 'http://127.0.0.1:9/v3' },
      snapshot: { chunkSize: 500 },
      http: { port: 0 },
      mappings: [{ table: 'public.users', contactListId: 'list-1', fields: { userId: 'id', email: 'email', firstName: 'first_name' } }],
    });
    // A first resync creates the schema and the slot; every test then starts from an empty outbox.
    expect((await resync('id = 1')).code).toBe(0);
  });
  beforeEach(async () => {
    await tdb.query(`DELETE FROM wooxy_cdc.outbox`);
  });
  afterAll(async () => {
    await adminQuery(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'evil_slot' AND NOT active`);
    await tdb.drop();
  });

  it('refuses a function that reads the server’s files into a large object', async () => {
    const r = await resync(`id = 1 AND lo_import('/etc/passwd') > 0`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/calls lo_import\(text\), declared VOLATILE/);
    expect((await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_largeobject_metadata`)).rows[0]!.n).toBe(0);
    expect(await queued()).toBe(0);
  });

  it('refuses creating a replication slot (it would retain WAL until dropped)', async () => {
    const r = await resync(`id = 1 AND (pg_create_logical_replication_slot('evil_slot', 'pgoutput')).lsn IS NOT NULL`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/calls pg_create_logical_replication_slot\(name,name,boolean(,boolean)?\), declared VOLATILE/);
    expect((await adminQuery(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'evil_slot'`)).rowCount).toBe(0);
  });

  it('refuses terminating a backend, from a subquery or as a second statement', async () => {
    const victim = new pg.Client({ connectionString: tdb.url });
    await victim.connect();
    try {
      const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const r = await resync(`id IN (SELECT id FROM users WHERE pg_terminate_backend(${pid}))`);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/calls pg_terminate_backend\(integer,bigint\), declared VOLATILE/);
      // As a statement of its own: without a bound parameter, pg would send all three by the simple protocol.
      const smuggled = await resync(`true); SELECT pg_terminate_backend(${pid}); SELECT (true`);
      expect(smuggled.code).toBe(2);
      expect(smuggled.stderr).toMatch(/cannot insert multiple commands into a prepared statement/);
      expect((await victim.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
    } finally {
      await victim.end();
    }
  });

  it('refuses a volatile function behind an operator, and random()', async () => {
    await tdb.query(`CREATE OR REPLACE FUNCTION bump(a bigint, b bigint) RETURNS boolean VOLATILE LANGUAGE sql AS 'SELECT a = b'`);
    await tdb.query(`CREATE OPERATOR === (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = bump)`);
    const r = await resync('id === 7');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/calls bump\(bigint,bigint\), declared VOLATILE/);
    expect((await resync('random() < 0.5')).stderr).toMatch(/calls random\(\), declared VOLATILE/);
    expect(await queued()).toBe(0);
  });

  it('refuses a predicate that closes its own parentheses to widen the query', async () => {
    const r = await resync('id > 1990) OR (true');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--where "id > 1990\) OR \(true": not one expression/);
    expect(await queued()).toBe(0);
    // The same rows, written as one expression, are accepted.
    const ok = await resync('(id > 1990) OR (false)');
    expect(ok.code).toBe(0);
    expect(await queued()).toBe(10);
  });

  it('accepts immutable and stable functions, operators, casts, subqueries and aggregates', async () => {
    const r = await resync(
      `updated_at > now() - interval '2 days' AND lower(email) LIKE 'u1%' AND id = ANY ('{10,100,1000,1999}'::bigint[])
       AND (id, email) >= (10, '') AND id <= (SELECT max(id) FROM users) AND coalesce(first_name, '') <> '' -- why: a comment`,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resync users: 4 rows .*, 4 queued/);
  });
});
