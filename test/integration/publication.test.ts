import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { checkPrerequisites } from '../../src/source/setup.js';
import pg from 'pg';
import { testConfig, testConnector } from '../helpers/connector.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Publication column lists (PostgreSQL 15+): only what the mappings read and the replica identity leaves the
 * server. Proven on the bytes a walsender sends: a second pgoutput slot, peeked with the connector's
 * publication and, as the control that shows the check can fail, with a publication of every column.
 */
const TABLE = `CREATE TABLE people (
  id bigint PRIMARY KEY,
  email text,
  first_name text,
  last_name text,
  plan text,
  secret_note text,
  ssn text
)`;
const MAPPING = { table: 'people', contactListId: 'l', fields: { userId: 'id', email: 'email', name: { template: '{first_name} {last_name}' } } };

const listOf = async (tdb: TestDatabase, table = 'people') =>
  (
    await tdb.query<{ attnames: string[] | null; prattrs: string | null; rowfilter: string | null }>(
      `SELECT r.prattrs::text AS prattrs, t.attnames::text[] AS attnames, t.rowfilter FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
       JOIN pg_publication_tables t ON t.pubname = p.pubname AND t.tablename = $2 WHERE p.pubname = $1 AND r.prrelid = $2::regclass`,
      [tdb.publication, table],
    )
  ).rows[0];

describe('publication column lists', () => {
  let tdb: TestDatabase;
  const config = (mappings: unknown[] = [MAPPING], postgres: Record<string, unknown> = {}): Config =>
    testConfig(tdb, {
      snapshot: { onStart: false },
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc', ...postgres },
      mappings,
    });
  const pending = async (key: string) =>
    (await tdb.query<{ payload: Record<string, unknown> | null }>(`SELECT payload FROM wooxy_cdc.outbox WHERE source_key = $1 AND state = 'pending'`, [key])).rows[0]?.payload;

  beforeAll(async () => {
    tdb = await createTestDatabase('publication');
    await tdb.query(TABLE);
  });
  afterAll(async () => tdb.drop());
  beforeEach(async () => {
    tdb.slot = uniqueName('slot');
    tdb.publication = uniqueName('pub');
    await tdb.query('DROP SCHEMA IF EXISTS wooxy_cdc CASCADE');
    await tdb.query('TRUNCATE people');
  });

  it("keeps an unmapped column's value out of the replication stream", async () => {
    const c = testConnector(config());
    await c.start();
    const spy = uniqueName('spy');
    const all = uniqueName('every_column');
    try {
      await waitFor(() => c.replication?.isStreaming, { message: 'streaming' });
      expect(await listOf(tdb)).toMatchObject({ attnames: ['id', 'email', 'first_name', 'last_name'] });
      await tdb.query(`CREATE PUBLICATION ${all} FOR TABLE people`);
      await tdb.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [spy]);
      await tdb.query(`INSERT INTO people VALUES (1, 'mapped-4711@example.com', 'Ada', 'Lovelace', 'pro', 'PII-note-4711', 'PII-ssn-4711')`);
      await tdb.query(`UPDATE people SET secret_note = 'PII-note-4712', email = 'mapped-4712@example.com' WHERE id = 1`);
      const peek = async (publication: string) => {
        const { rows } = await tdb.query<{ data: Buffer }>(
          `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
          [spy, publication],
        );
        return Buffer.concat(rows.map((r) => r.data)).toString('utf8');
      };
      // The walsender decodes what is flushed; the servers of the test harness commit asynchronously.
      await waitFor(async () => (await peek(tdb.publication)).includes('mapped-4712'), { message: 'both changes decoded' });
      const listed = await peek(tdb.publication);
      expect(listed).toContain('mapped-4711@example.com');
      expect(listed).toContain('Lovelace');
      expect(listed).not.toMatch(/PII-|pro/);
      // The control: without a column list the same changes carry every column.
      const everything = await peek(all);
      expect(everything).toContain('PII-ssn-4711');
      expect(everything).toContain('PII-note-4712');
      // And the connector, reading through its list, has what it maps.
      await waitFor(async () => (await pending('1'))?.email === 'mapped-4712@example.com', { message: 'the change in the outbox' });
      expect(await pending('1')).toEqual({ userId: '1', email: 'mapped-4712@example.com', name: 'Ada Lovelace' });
      // The table's own writes are unaffected: the list covers the replica identity.
      await tdb.query(`DELETE FROM people WHERE id = 1`);
    } finally {
      await c.stop();
      await tdb.query(`SELECT pg_drop_replication_slot($1)`, [spy]).catch(() => undefined);
      await tdb.query(`DROP PUBLICATION IF EXISTS ${all}`);
    }
  });

  it('brings an existing publication to the mapping: a list set, widened, narrowed, a row filter kept', async () => {
    await tdb.query(`CREATE PUBLICATION ${tdb.publication} FOR TABLE people WHERE (id > 0)`);
    const start = async (mappings: unknown[], postgres: Record<string, unknown> = {}) => {
      const c = testConnector(config(mappings, postgres));
      await c.start();
      await waitFor(() => c.replication?.isStreaming, { message: 'streaming' });
      await c.stop();
    };
    await start([MAPPING]);
    expect(await listOf(tdb)).toMatchObject({ attnames: ['id', 'email', 'first_name', 'last_name'], rowfilter: '(id > 0)' });
    // The mapping reads plan (a variable) and filters on secret_note being NULL: both are published.
    await start([{ ...MAPPING, variables: { plan: 'plan' }, filter: [{ column: 'secret_note', isNull: true }] }]);
    expect(await listOf(tdb)).toMatchObject({ attnames: ['id', 'email', 'first_name', 'last_name', 'plan', 'secret_note'], rowfilter: '(id > 0)' });
    await start([{ table: 'people', contactListId: 'l', fields: { userId: 'id' } }]);
    expect(await listOf(tdb)).toMatchObject({ attnames: ['id'] });
    // publishColumns: all drops the list.
    await start([MAPPING], { publishColumns: 'all' });
    expect(await listOf(tdb)).toMatchObject({ prattrs: null });
  });

  it('with autoCreate off, refuses a publication whose list is not the mapping, naming the SQL that fixes it', async () => {
    await tdb.query(`CREATE PUBLICATION ${tdb.publication} FOR TABLE people`);
    await tdb.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [tdb.slot]);
    const c = testConnector(config([MAPPING], { autoCreate: false }));
    const refused = await c.start().then(
      () => null,
      (e: Error) => e,
    );
    await c.stop();
    expect(refused).toMatchObject({ code: 'PG_PUBLICATION_COLUMNS', message: expect.stringContaining('lacks the column list the mappings need for "public"."people"') });
    for (const sql of refused!.message.split('run:\n')[1]!.split('\n')) await tdb.query(sql.trim().replace(/;$/, ''));
    expect(await listOf(tdb)).toMatchObject({ attnames: ['id', 'email', 'first_name', 'last_name'] });
    // Now it starts; and a mapping that reads one more column is refused again, naming it.
    const c2 = testConnector(config([MAPPING], { autoCreate: false }));
    await c2.start();
    await waitFor(() => c2.replication?.isStreaming, { message: 'streaming' });
    await c2.stop();
    const c3 = testConnector(config([{ ...MAPPING, variables: { plan: 'plan' } }], { autoCreate: false }));
    await expect(c3.start()).rejects.toMatchObject({ code: 'PG_PUBLICATION_COLUMNS', message: expect.stringContaining('lacks columns plan of "public"."people"') });
    await c3.stop();
  });

  it('publishes a REPLICA IDENTITY FULL table without a list, and covers a composite key with one', async () => {
    await tdb.query(`CREATE TABLE full_people (id int PRIMARY KEY, email text, secret text); ALTER TABLE full_people REPLICA IDENTITY FULL`);
    await tdb.query(`CREATE TABLE tenant_people (tenant int, id int, email text, secret text, PRIMARY KEY (tenant, id))`);
    const c = testConnector(
      config([
        { table: 'full_people', contactListId: 'l', fields: { userId: 'id', email: 'email' } },
        { table: 'tenant_people', contactListId: 'l2', fields: { userId: 'id', email: 'email' } },
      ]),
    );
    await c.start();
    try {
      expect(await listOf(tdb, 'full_people')).toMatchObject({ prattrs: null });
      expect(await listOf(tdb, 'tenant_people')).toMatchObject({ attnames: ['tenant', 'id', 'email'] });
      // Postgres refuses a table's updates when a list misses its identity: these must go through.
      await tdb.query(`INSERT INTO full_people VALUES (1, 'a@example.com', 's'); UPDATE full_people SET secret = 't'; DELETE FROM full_people`);
      await tdb.query(`INSERT INTO tenant_people VALUES (1, 1, 'a@example.com', 's'); UPDATE tenant_people SET secret = 't'; DELETE FROM tenant_people`);
    } finally {
      await c.stop();
      await tdb.query('DROP TABLE full_people, tenant_people');
    }
  });

  it('goes on when changes queued before a start lack a column the mapping has just started to read', async () => {
    const first = testConnector(config([MAPPING]));
    await first.start();
    await waitFor(() => first.replication?.isStreaming, { message: 'streaming' });
    await first.stop();
    // While it is stopped: a change the old list decodes without plan.
    await tdb.query(`INSERT INTO people (id, email, plan) VALUES (10, 'queued@example.com', 'pro')`);
    const second = testConnector(config([{ ...MAPPING, variables: { plan: 'plan' } }]));
    await second.start();
    try {
      // The queued change lacks plan (left out of its payload, never sent as empty); the changed mapping's re-sync
      // reads the row again, and whichever of the two lands last, plan is known in the end.
      await waitFor(async () => isDeepStrictEqual(await pending('10'), { userId: '10', email: 'queued@example.com', name: '', variables: [{ name: 'plan', value: 'pro' }] }), {
        message: 'the queued change in the outbox, completed by the re-sync',
      });
      await tdb.query(`INSERT INTO people (id, email, plan) VALUES (11, 'later@example.com', 'team')`);
      await waitFor(async () => (await pending('11')) !== undefined, { message: 'the later change in the outbox' });
      expect(await pending('11')).toEqual({ userId: '11', email: 'later@example.com', name: '', variables: [{ name: 'plan', value: 'team' }] });
      expect(second.replication?.stoppedMappings.size).toBe(0);
    } finally {
      await second.stop();
    }
  });
});

describe('generated columns', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('generated');
    // The typical users table of the issue: citext email, an enum state, an identity key, a generated display name.
    await tdb.query(`CREATE EXTENSION citext;
      CREATE TYPE user_state AS ENUM ('active', 'banned');
      CREATE TABLE users (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        email citext NOT NULL,
        state user_state NOT NULL DEFAULT 'active',
        first_name text,
        last_name text,
        display_name text GENERATED ALWAYS AS (coalesce(first_name, '') || ' ' || coalesce(last_name, '')) STORED
      )`);
  });
  afterAll(async () => tdb.drop());

  const mapping = (name: unknown) => ({ table: 'users', contactListId: 'l', fields: { userId: 'id', email: 'email', name }, filter: [{ column: 'state', equals: 'active' }] });

  it('refuses a mapping that reads one, at start and in the check validate-config --online will run, naming the alternative', async () => {
    const config = testConfig(tdb, { mappings: [mapping('display_name')] });
    const problem = {
      path: 'mappings[0].fields.name',
      message: expect.stringMatching(
        /^column display_name of "public"\."users" is generated \(.*first_name.*last_name.*\), and PostgreSQL before 18 does not publish generated columns: the snapshot would read it, the stream never\. Use a template over the columns it is computed from/,
      ),
    };
    const c = testConnector(config);
    await expect(c.start()).rejects.toMatchObject({ code: 'CONFIG_INVALID', problems: [problem] });
    await c.stop();
    const client = new pg.Client(tdb.url);
    await client.connect();
    try {
      await expect(checkPrerequisites(client, [compileMapping(config.mappings[0]!)], { publication: tdb.publication })).rejects.toMatchObject({ code: 'CONFIG_INVALID', problems: [problem] });
      // Nothing was created on the way.
      expect((await client.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [tdb.publication])).rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('takes the template over the base columns instead, through the stream', async () => {
    tdb.slot = uniqueName('slot');
    tdb.publication = uniqueName('pub');
    const c = testConnector(testConfig(tdb, { mappings: [mapping({ template: '{first_name} {last_name}' })] }));
    await c.start();
    try {
      await waitFor(() => c.replication?.isStreaming, { message: 'streaming' });
      await tdb.query(`INSERT INTO users (email, first_name, last_name) VALUES ('Ada@Example.com', 'Ada', NULL)`);
      await waitFor(async () => (await tdb.query(`SELECT 1 FROM wooxy_cdc.outbox`)).rowCount === 1, { message: 'the row in the outbox' });
      const { rows } = await tdb.query<{ payload: unknown }>(`SELECT payload FROM wooxy_cdc.outbox`);
      expect(rows[0]!.payload).toEqual({ userId: '1', email: 'Ada@Example.com', name: 'Ada' });
      expect(c.replication?.stoppedMappings.size).toBe(0);
    } finally {
      await c.stop();
    }
  });
});
