import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { runCli, writeConfig } from '../helpers/child.js';
import { startEmulator, TOKEN } from '../helpers/emulator.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

/**
 * `validate-config --online` checks what `run` would fail on, and changes nothing: a table that is not there,
 * a column that is not there, a column whose type the field's conversion cannot read (a jsonb column as a
 * language), and the access token — each named by its path, exit 2.
 */
describe('validate-config --online', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    tdb = await createTestDatabase('vonline');
    await tdb.query(`CREATE TABLE users (id bigint PRIMARY KEY, email text, prefs jsonb, first_name text)`);
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator.close();
    await tdb.drop();
  });

  const config = (mappings: unknown[], token = '${WOOXY_ACCESS_TOKEN}') =>
    writeConfig({ postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication }, wooxy: { accessToken: token, baseUrl: emulator.url }, mappings });

  it('passes a configuration run would accept, and says what it checked', async () => {
    const r = await runCli(['validate-config', '--online', '--config', config([{ table: 'users', contactListId: 'l', fields: { userId: 'id', email: 'email', firstName: 'first_name' } }])], {
      WOOXY_ACCESS_TOKEN: TOKEN,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok {2}mappings: every table, column and column type readable \(users\)/);
    expect(r.stdout).toMatch(/ok {2}wooxy\.accessToken: accepted/);
    expect(r.stdout).toMatch(/slot: .* does not exist yet; run creates it/);
    // Nothing was created.
    expect((await tdb.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [tdb.slot])).rowCount).toBe(0);
    expect((await tdb.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [tdb.publication])).rowCount).toBe(0);
  });

  it('names a missing table, an unknown column, an unreadable type and a refused token, by path (exit 2)', async () => {
    const file = config(
      [
        { table: 'users', contactListId: 'l', fields: { userId: 'id', email: 'mail_address', contactLanguage: 'prefs' } },
        { table: 'public.nope', contactListId: 'l', fields: { userId: 'id' } },
      ],
      'not-a-token',
    );
    const r = await runCli(['validate-config', '--online', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('mappings[0].fields.email: column mail_address does not exist in "public"."users"');
    expect(r.stderr).toMatch(/mappings\[0\]\.fields\.contactLanguage: column prefs of "public"\."users" is jsonb: fields\.contactLanguage reads text/);
    expect(r.stderr).toContain('mappings[1].table: table "public"."nope" does not exist');
    expect(r.stderr).toMatch(/wooxy\.accessToken: Wooxy refuses it/);
  });
});
