import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector.js';
import { testConfig, testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

interface OutboxRow {
  mapping: string;
  source_key: string;
  state: string;
  payload: Record<string, unknown> | null;
}

describe('capture: replication → contact state → outbox', () => {
  let tdb: TestDatabase;
  let connector: Connector;

  const outbox = async (key?: string) =>
    (
      await tdb.query<OutboxRow>(
        `SELECT mapping, source_key, state, payload FROM wooxy_cdc.outbox
         WHERE ${key ? 'source_key = $1' : `length(source_key) < 16`} ORDER BY source_key, state`,
        key ? [key] : [],
      )
    ).rows;
  const state = async (key: string) =>
    (await tdb.query<{ row: Record<string, unknown> | null; desired: Record<string, unknown> | null; synced: unknown }>(
      'SELECT row, desired, synced FROM wooxy_cdc.contact_state WHERE source_key = $1',
      [key],
    )).rows[0];
  /** What delivery does once Wooxy confirmed a contact: the pending entry goes, synced takes its payload. */
  const markSynced = async (key: string) => {
    await tdb.query(`UPDATE wooxy_cdc.contact_state SET synced = desired WHERE source_key = $1`, [key]);
    await tdb.query(`DELETE FROM wooxy_cdc.outbox WHERE source_key = $1`, [key]);
  };
  /** Waits until every change committed so far is durable: a marker row (a 16-digit key, ignored above) lands. */
  let markers = 0;
  const settle = async () => {
    const marker = String(9e15 + ++markers);
    await tdb.query(`INSERT INTO users (id, email) VALUES ($1, 'marker@example.com')`, [marker]);
    await waitFor(async () => (await outbox(marker)).length === 1, { message: 'marker row in the outbox' });
  };

  beforeAll(async () => {
    tdb = await createTestDatabase('capture');
    await tdb.query(USERS_DDL);
  });
  afterAll(async () => tdb.drop());

  beforeEach(async () => {
    tdb.slot = uniqueName('slot');
    tdb.publication = uniqueName('pub');
    await tdb.query('TRUNCATE users');
    await tdb.query('DROP SCHEMA IF EXISTS wooxy_cdc CASCADE');
    // The stream alone: a snapshot on start would race the stream to the outbox (that is tested in snapshot tests).
    connector = testConnector(testConfig(tdb, { snapshot: { onStart: false } }));
    await connector.start();
    await waitFor(() => connector.replication?.isStreaming, { message: 'streaming' });
  });
  afterEach(async () => connector.stop());

  it('turns an insert into one pending entry with the contact payload', async () => {
    await tdb.query(`INSERT INTO users (id, email, phone, first_name, last_name) VALUES (1, 'a@example.com', '+15555555', 'Ann', NULL)`);
    const rows = await waitFor(async () => ((await outbox('1')).length ? outbox('1') : null));
    expect(rows).toEqual([
      {
        mapping: 'users',
        source_key: '1',
        state: 'pending',
        payload: { userId: '1', email: 'a@example.com', phoneNumber: '+15555555', firstName: 'Ann', lastName: '', name: '' },
      },
    ]);
  });

  it('coalesces many updates of one contact into its latest state', async () => {
    await tdb.query(`INSERT INTO users (id, email) VALUES (2, 'b0@example.com')`);
    for (let i = 1; i <= 20; i++) await tdb.query(`UPDATE users SET first_name = $1 WHERE id = 2`, [`v${i}`]);
    await settle();
    const rows = await outbox('2');
    expect(rows).toHaveLength(1);
    expect(rows[0]?.payload).toMatchObject({ userId: '2', email: 'b0@example.com', firstName: 'v20' });
  });

  it('removes the right contact on a delete that carries only the key', async () => {
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (3, 'c@example.com', '+4915112345678')`);
    await settle();
    await markSynced('3');
    await tdb.query('DELETE FROM users WHERE id = 3');
    await settle();
    expect(await outbox('3')).toEqual([{ mapping: 'users', source_key: '3', state: 'pending', payload: null }]);
    // The identifiers Wooxy knows the contact by survive the delete, so the removal can address it.
    expect((await state('3'))?.synced).toMatchObject({ userId: '3', email: 'c@example.com', phoneNumber: '+4915112345678' });
    expect((await state('3'))?.row).toBeNull();
  });

  it('merges an unchanged TOASTed column from the last state seen', async () => {
    const bio = randomBytes(6000).toString('base64'); // incompressible, so stored out of line
    await tdb.query(`INSERT INTO users (id, email, bio) VALUES (4, 'd@example.com', $1)`, [bio]);
    await settle();
    await markSynced('4');
    await tdb.query(`UPDATE users SET first_name = 'Dee' WHERE id = 4`);
    await settle();
    const rows = await outbox('4');
    expect(rows).toHaveLength(1);
    expect(rows[0]?.payload).toMatchObject({ firstName: 'Dee', name: bio, email: 'd@example.com' });
  });

  it('keeps the synced identifiers apart from the desired ones when an email changes', async () => {
    await tdb.query(`INSERT INTO users (id, email) VALUES (5, 'old@example.com')`);
    await settle();
    await markSynced('5');
    await tdb.query(`UPDATE users SET email = 'new@example.com' WHERE id = 5`);
    await settle();
    expect((await outbox('5'))[0]?.payload).toMatchObject({ email: 'new@example.com' });
    const s = await state('5');
    expect(s?.synced).toMatchObject({ email: 'old@example.com' });
    expect(s?.desired).toMatchObject({ email: 'new@example.com' });
  });

  it('sends nothing for an update that changes no mapped column', async () => {
    await tdb.query(`INSERT INTO users (id, email, plan) VALUES (6, 'f@example.com', 'free')`);
    await settle();
    await markSynced('6');
    await tdb.query(`UPDATE users SET plan = 'pro', updated_at = now() WHERE id = 6`);
    await tdb.query(`UPDATE users SET first_name = NULL WHERE id = 6`); // NULL → '' as before: no change either
    await settle();
    expect(await outbox('6')).toEqual([]);
  });

  it('treats a key change as the removal of the old contact and the addition of the new', async () => {
    await tdb.query(`INSERT INTO users (id, email) VALUES (7, 'g@example.com')`);
    await settle();
    await markSynced('7');
    await tdb.query(`UPDATE users SET id = 70 WHERE id = 7`);
    await settle();
    expect(await outbox('7')).toEqual([expect.objectContaining({ payload: null })]);
    expect((await outbox('70'))[0]?.payload).toMatchObject({ userId: '70', email: 'g@example.com' });
  });

  it('queues the removal of every synced contact on TRUNCATE', async () => {
    await tdb.query(`INSERT INTO users (id, email) VALUES (8, 'h@example.com'), (9, 'i@example.com')`);
    await settle();
    await markSynced('8');
    await markSynced('9');
    await tdb.query('TRUNCATE users');
    await waitFor(async () => (await outbox()).length === 2);
    expect((await outbox()).map((r) => [r.source_key, r.payload])).toEqual([
      ['8', null],
      ['9', null],
    ]);
  });

  it('records the durable LSN and acknowledges it to the slot', async () => {
    await tdb.query(`INSERT INTO users (id, email) VALUES (10, 'j@example.com')`);
    await settle();
    const { rows } = await tdb.query<{ durable: string; confirmed: string }>(
      `SELECT r.durable_lsn::text AS durable, s.confirmed_flush_lsn::text AS confirmed
       FROM wooxy_cdc.replication_state r JOIN pg_replication_slots s ON s.slot_name = r.slot`,
    );
    expect(rows).toHaveLength(1);
    await waitFor(async () => {
      const r = await tdb.query<{ ok: boolean }>(
        `SELECT s.confirmed_flush_lsn >= r.durable_lsn AS ok FROM wooxy_cdc.replication_state r JOIN pg_replication_slots s ON s.slot_name = r.slot`,
      );
      return r.rows[0]?.ok;
    }, { message: 'slot confirmed up to the durable LSN' });
  });
});
