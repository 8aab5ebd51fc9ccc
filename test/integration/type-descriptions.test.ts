import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRead, typeChange } from '../../src/mapping/column-types.js';
import { readTypeDescriptions } from '../../src/source/type-descriptions.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

/** The catalog read behind column-types.ts, against a real server: names, categories, domains resolved. */
describe('type descriptions from pg_type', () => {
  let tdb: TestDatabase;
  let client: pg.Client;
  beforeAll(async () => {
    tdb = await createTestDatabase('types');
    client = new pg.Client(tdb.url);
    await client.connect();
    await client.query(`CREATE EXTENSION citext;
      CREATE TYPE user_state AS ENUM ('active', 'banned');
      CREATE DOMAIN email_address AS citext CHECK (VALUE LIKE '%@%');
      CREATE DOMAIN work_email AS email_address;
      CREATE DOMAIN prefs_doc AS jsonb;
      CREATE TABLE users (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email citext, work work_email, state user_state,
        name varchar(80), code char(3), prefs prefs_doc, born date, seen timestamptz, score numeric(6,2), tags text[])`);
  });
  afterAll(async () => {
    await client.end();
    await tdb.drop();
  });

  it('describes every column type of a typical users table, a domain over a domain resolved to its base', async () => {
    const { rows } = await client.query<{ attname: string; atttypid: number }>(
      `SELECT attname, atttypid FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 ORDER BY attnum`,
    );
    const types = await readTypeDescriptions(client, [...rows.map((r) => r.atttypid), 999_999_999]);
    const of = (column: string) => types.get(rows.find((r) => r.attname === column)!.atttypid)!;
    expect(of('id')).toMatchObject({ typname: 'int8', name: 'bigint', category: 'N', base: null });
    expect(of('email')).toMatchObject({ typname: 'citext', name: 'citext', category: 'S', base: null });
    expect(of('work')).toMatchObject({ typname: 'work_email', name: 'work_email', base: { typname: 'citext', category: 'S', base: null } });
    expect(of('state')).toMatchObject({ typname: 'user_state', category: 'E' });
    expect(of('name')).toMatchObject({ typname: 'varchar', name: 'character varying' }); // no typmod in the name
    expect(of('code')).toMatchObject({ typname: 'bpchar', name: 'character' });
    expect(of('prefs')).toMatchObject({ typname: 'prefs_doc', base: { typname: 'jsonb' } });
    expect(of('seen')).toMatchObject({ typname: 'timestamptz', name: 'timestamp with time zone', category: 'D' });
    expect(of('tags')).toMatchObject({ typname: '_text', name: 'text[]', category: 'A' });
    expect(types.has(999_999_999)).toBe(false);

    // And the pure checks read them as a mapping would.
    expect(canRead('email', of('work'))).toEqual({ ok: true });
    expect(canRead('json', of('prefs'))).toEqual({ ok: true });
    expect(canRead('code', of('prefs')).ok).toBe(false);
    expect(typeChange('email', of('email'), of('id'))).toMatchObject({ ok: false, reason: expect.stringMatching(/^citext → bigint: /) });
  });
});
