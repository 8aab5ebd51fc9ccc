import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

/**
 * The slot is acknowledged after an outbox commit, so the connector's sessions must commit durably whatever
 * the server's default: synchronous_commit = off would report commits a crash can still take back.
 */
describe('connector sessions', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('db');
  });
  afterAll(async () => tdb.drop());

  const settingOfNewSessions = async (): Promise<string[]> => {
    const handle = createDb({ url: tdb.url, schema: 'wooxy_cdc', poolSize: 3 });
    try {
      // Three sessions at once, so each is a fresh connection of the pool.
      return await Promise.all(
        [1, 2, 3].map(async () => {
          const { rows } = await sql<{ s: string }>`SELECT current_setting('synchronous_commit') AS s, pg_sleep(0.05)`.execute(handle.db);
          return rows[0]!.s;
        }),
      );
    } finally {
      await handle.close();
    }
  };

  it('commit synchronously on a database that defaults to synchronous_commit = off', async () => {
    await tdb.query(`ALTER DATABASE ${tdb.database} SET synchronous_commit = off`);
    expect(await settingOfNewSessions()).toEqual(['on', 'on', 'on']);
  });

  it('keep a stronger level the database asks for', async () => {
    await tdb.query(`ALTER DATABASE ${tdb.database} SET synchronous_commit = remote_apply`);
    expect(await settingOfNewSessions()).toEqual(['remote_apply', 'remote_apply', 'remote_apply']);
  });
});
