import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig, testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const pending = async (tdb: TestDatabase, mapping: string) =>
  (
    await tdb.query<{ source_key: string; payload: Record<string, unknown> | null }>(
      `SELECT source_key, payload FROM wooxy_cdc.outbox WHERE mapping = $1 AND state = 'pending' ORDER BY source_key`,
      [mapping],
    )
  ).rows;

describe('capture: filters, schema changes and prerequisites', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('schema');
    await tdb.query(USERS_DDL);
    await tdb.query('CREATE TABLE leads (id int PRIMARY KEY, email text, score int)');
  });
  afterAll(async () => tdb.drop());

  it('adds a row that starts matching the filter and removes one that stops', async () => {
    tdb.slot = uniqueName('slot');
    tdb.publication = uniqueName('pub');
    const config = testConfig(tdb, {
      snapshot: { onStart: false },
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc' },
      mappings: [
        {
          table: 'users',
          name: 'active_users',
          contactListId: 'l',
          fields: { userId: 'id', email: 'email' },
          filter: [{ column: 'status', in: ['active', 'trial'] }],
        },
      ],
    });
    const c = testConnector(config);
    await c.start();
    try {
      await tdb.query(`INSERT INTO users (id, email, status) VALUES (1, 'in@example.com', 'active'), (2, 'out@example.com', 'banned')`);
      await waitFor(async () => (await pending(tdb, 'active_users')).length === 1);
      expect((await pending(tdb, 'active_users'))[0]).toMatchObject({ source_key: '1', payload: { email: 'in@example.com' } });
      // Wooxy confirmed contact 1; now it leaves the filter while 2 enters it.
      await tdb.query(`UPDATE wooxy_cdc.contact_state SET synced = desired WHERE source_key = '1'`);
      await tdb.query(`DELETE FROM wooxy_cdc.outbox`);
      await tdb.query(`UPDATE users SET status = 'banned' WHERE id = 1`);
      await tdb.query(`UPDATE users SET status = 'trial' WHERE id = 2`);
      await waitFor(async () => (await pending(tdb, 'active_users')).length === 2);
      expect(await pending(tdb, 'active_users')).toEqual([
        { source_key: '1', payload: null },
        { source_key: '2', payload: { userId: '2', email: 'out@example.com' } },
      ]);
    } finally {
      await c.stop();
    }
  });

  it('stops a mapping whose column is dropped, naming the column, while the others go on', async () => {
    tdb.slot = uniqueName('slot');
    tdb.publication = uniqueName('pub');
    await tdb.query('DROP SCHEMA IF EXISTS wooxy_cdc CASCADE');
    const config = testConfig(tdb, {
      snapshot: { onStart: false },
      // Every column published, as on PostgreSQL 14: a column list would make Postgres refuse the drop itself.
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc', publishColumns: 'all' },
      mappings: [
        { table: 'users', contactListId: 'l', fields: { userId: 'id', email: 'email', lastName: 'last_name' } },
        { table: 'leads', contactListId: 'l2', fields: { userId: 'id', email: 'email' } },
      ],
    });
    const c = testConnector(config);
    await c.start();
    try {
      await waitFor(() => c.replication?.isStreaming);
      await tdb.query('ALTER TABLE users DROP COLUMN last_name');
      await tdb.query(`INSERT INTO users (id, email) VALUES (10, 'x@example.com')`);
      await tdb.query(`INSERT INTO leads (id, email) VALUES (1, 'lead@example.com')`);
      await waitFor(async () => (await pending(tdb, 'leads')).length === 1, { message: 'the other mapping still flows' });
      expect(c.replication?.stoppedMappings.get('users')).toMatch(/column public\.users\.last_name no longer exists/);
      expect(await pending(tdb, 'users')).toEqual([]);
      expect((await c.metrics.mappingErrors.get()).values).toEqual(
        expect.arrayContaining([expect.objectContaining({ labels: { mapping: 'users' }, value: 1 }), expect.objectContaining({ labels: { mapping: 'leads' }, value: 0 })]),
      );
    } finally {
      await c.stop();
      await tdb.query('ALTER TABLE users ADD COLUMN last_name text');
    }
  });

  it('names every table and column the configuration gets wrong, by path, in one error', async () => {
    const config = testConfig(tdb, {
      snapshot: { onStart: false },
      mappings: [
        { table: 'users', contactListId: 'l', fields: { userId: 'id', email: 'mail_address' } },
        { table: 'public.nope', contactListId: 'l', fields: { email: 'email' } },
      ],
    });
    const c = testConnector(config);
    await expect(c.start()).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      problems: [
        { path: 'mappings[0].fields.email', message: 'column mail_address does not exist in "public"."users"' },
        { path: 'mappings[1].table', message: 'table "public"."nope" does not exist' },
      ],
    });
    await c.stop();
  });

  it('with autoCreate off, says exactly what SQL to run', async () => {
    tdb.slot = uniqueName('slot');
    tdb.publication = uniqueName('pub');
    const base = testConfig(tdb);
    const c = testConnector({ ...base, postgres: { ...base.postgres, autoCreate: false } });
    const refused = await c.start().then(
      () => null,
      (e: Error) => e,
    );
    expect(refused).toMatchObject({
      code: 'PG_PUBLICATION_MISSING',
      message: expect.stringContaining(`CREATE PUBLICATION "${tdb.publication}" FOR TABLE "public"."users" ("bio", "email", "first_name", "id", "last_name", "phone")`),
    });
    await c.stop();
    // What a DBA does with the message: run the SQL it names.
    for (const sql of refused!.message.split('run:\n')[1]!.split('\n')) await tdb.query(sql.trim());
    const c2 = testConnector({ ...base, postgres: { ...base.postgres, autoCreate: false } });
    await expect(c2.start()).rejects.toMatchObject({
      code: 'PG_SLOT_MISSING',
      message: expect.stringContaining(`SELECT pg_create_logical_replication_slot('${tdb.slot}', 'pgoutput')`),
    });
    await c2.stop();
  });
});
