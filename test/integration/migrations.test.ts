import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/index.js';
import { appliedMigrations, migrate } from '../../src/db/migrator.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

describe('migrations', () => {
  let tdb: TestDatabase;
  let handle: DbHandle;
  const schema = 'cdc_own';
  beforeAll(async () => {
    tdb = await createTestDatabase('migr');
    handle = createDb({ url: tdb.url, schema });
  });
  afterAll(async () => {
    await handle.close();
    await tdb.drop();
  });

  it('migrates a fresh database into its own schema, and a second run changes nothing', async () => {
    const first = await migrate(handle.db, schema);
    expect(first.applied).toEqual(MIGRATIONS.map(([name]) => name));
    const { rows } = await tdb.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
      [schema],
    );
    expect(rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining(['contact_state', 'dead_letters', 'outbox', 'replication_state', 'requests', 'schema_migrations']),
    );
    const second = await migrate(handle.db, schema);
    expect(second.applied).toEqual([]);
    expect(second.current).toEqual(first.current);
  });

  it('refuses a schema migrated by a newer release', async () => {
    await sql`INSERT INTO ${sql.id(schema, 'schema_migrations')} (name, timestamp) VALUES ('9999_from_the_future', now()::text)`.execute(handle.db);
    await expect(migrate(handle.db, schema)).rejects.toMatchObject({ code: 'SCHEMA_TOO_NEW' });
    expect(await appliedMigrations(handle.db, schema)).toContain('9999_from_the_future');
  });
});
