import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrator.js';
import { createLogger } from '../../src/observability/logger.js';
import { RemovalGuard, type GuardEvent } from '../../src/outbox/removal-guard.js';
import { takeWriterTurn } from '../../src/store/capture.js';
import { storeContext, type StoreContext } from '../../src/store/context.js';
import { claimDue } from '../../src/store/delivery.js';
import { beginTerm } from '../../src/store/fence.js';
import { approveRemovals, discardRemovals } from '../../src/store/removals.js';
import { transaction, type Fence } from '../../src/store/tx.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

/**
 * The guard's statements on real Postgres, rows written by hand: which counts hold, what a claim takes from a
 * held mapping, and what approve and discard cover. (The whole path, from a TRUNCATE to the emulator's list,
 * is test/e2e/removal-guard.test.ts.)
 */
describe('mass-removal guard: the store', () => {
  let tdb: TestDatabase;
  let handle: DbHandle;
  let ctx: StoreContext;
  let fence: Fence;
  const schema = 'cdc_guard';
  const slot = 'guard_slot';
  const mappings = ['users', 'orders'].map((name) => ({ name, schema: 'public', tableName: name, contactListId: 'l', guard: { removePercent: 10, minRemovals: 100 } }));
  const guard = () => new RemovalGuard({ ctx, fence: null, mappings, log: createLogger({ level: 'silent' }) });

  beforeAll(async () => {
    tdb = await createTestDatabase('guardstore');
    handle = createDb({ url: tdb.url, schema });
    await migrate(handle.db, schema);
    ctx = storeContext(handle);
    const client = new pg.Client(tdb.url);
    await client.connect();
    fence = { slot, epoch: await beginTerm(client, schema, slot, 'test') };
    await client.end();
  });
  afterAll(async () => {
    await handle.close();
    await tdb.drop();
  });
  beforeEach(async () => {
    await tdb.query(`TRUNCATE ${schema}.contact_state, ${schema}.outbox, ${schema}.removal_guard, ${schema}.removal_decisions, ${schema}.replication_state`);
    await durable('0/FFFFFF');
  });

  const durable = (lsn: string) =>
    tdb.query(`INSERT INTO ${schema}.replication_state (slot, durable_lsn) VALUES ($1, $2) ON CONFLICT (slot) DO UPDATE SET durable_lsn = EXCLUDED.durable_lsn`, [slot, lsn]);
  /** Contacts `from`…`to` of a mapping that Wooxy holds (synced), still in the table. */
  const synced = (mapping: string, from: number, to: number) =>
    tdb.query(
      `INSERT INTO ${schema}.contact_state (mapping, source_key, row, desired, synced, lsn)
       SELECT $1, g::text, jsonb_build_object('id', g), jsonb_build_object('userId', g::text), jsonb_build_object('userId', g::text), '0/10'
       FROM generate_series($2::int, $3::int) g`,
      [mapping, from, to],
    );
  /** Rows deleted at the source: the state's row and desired go, a removal is queued at `lsn`. */
  const deleted = async (mapping: string, from: number, to: number, lsn = '0/100') => {
    await tdb.query(`UPDATE ${schema}.contact_state SET row = NULL, desired = NULL WHERE mapping = $1 AND source_key::int BETWEEN $2 AND $3`, [mapping, from, to]);
    await tdb.query(
      `INSERT INTO ${schema}.outbox (mapping, source_key, state, payload, lsn) SELECT $1, g::text, 'pending', NULL, $4 FROM generate_series($2::int, $3::int) g
       ON CONFLICT (mapping, source_key, state) DO UPDATE SET payload = NULL, lsn = EXCLUDED.lsn`,
      [mapping, from, to, lsn],
    );
  };
  /** As the stream's writer does it: under the writer turn, in the write's transaction. */
  const judge = (mapping: string, truncated = false): Promise<GuardEvent[]> =>
    transaction(ctx, null, async (trx) => {
      await takeWriterTurn(ctx, trx);
      return guard().judgeWrite(trx, new Map([[mapping, { keys: 'all' as const, truncated }]]));
    });
  const claim = async () =>
    (await claimDue(ctx, { fence, owner: 'test', mappings: ['users', 'orders'], busy: [], limit: 1000, leaseMs: 60_000 }))
      .map((e) => `${e.mapping}/${e.key}`)
      .sort();
  const release = () => tdb.query(`UPDATE ${schema}.outbox SET claim_epoch = NULL, claimed_by = NULL, claimed_until = NULL`);
  const heldRow = async (mapping = 'users') => (await tdb.query(`SELECT held_since IS NOT NULL AS held, held_count, cause FROM ${schema}.removal_guard WHERE mapping = $1`, [mapping])).rows[0];

  it('holds more than 100 and more than 10% of the synced contacts, and nothing less', async () => {
    await synced('users', 1, 1010);
    await deleted('users', 1, 101);
    expect(await judge('users')).toEqual([]); // 101 of 1,010: exactly 10%
    await deleted('users', 102, 102);
    expect(await judge('users', true)).toEqual([{ kind: 'held', mapping: 'users', contacts: 102, synced: 1010, cause: 'TRUNCATE of public.users' }]);
    expect(await heldRow()).toEqual({ held: true, held_count: 102, cause: 'TRUNCATE of public.users' });
    // Judged again, a hold is kept, not begun again (one log line per hold).
    expect(await judge('users')).toEqual([]);
    // Contacts Wooxy never had are no removals: 300 rows inserted and deleted before delivery count for nothing.
    await tdb.query(`INSERT INTO ${schema}.contact_state (mapping, source_key) SELECT 'orders', g::text FROM generate_series(1, 300) g`);
    await tdb.query(`INSERT INTO ${schema}.outbox (mapping, source_key, state, payload) SELECT 'orders', g::text, 'pending', NULL FROM generate_series(1, 300) g`);
    expect(await judge('orders')).toEqual([]);
  });

  it("a claim takes a held mapping's adds, updates and remove-then-adds, and none of its removals, parked or not", async () => {
    await synced('users', 1, 200);
    await deleted('users', 1, 150);
    expect(await judge('users')).toMatchObject([{ kind: 'held', contacts: 150 }]);
    // Queued after the hold by a path that does not judge (a retried dead letter): not parked, still held.
    await deleted('users', 151, 151, '0/200');
    await tdb.query(
      `INSERT INTO ${schema}.outbox (mapping, source_key, state, payload) VALUES
         ('users', '152', 'pending', '{"userId": "152", "firstName": "changed"}'),   -- an update
         ('users', '153', 'pending', '{"email": "x@example.com"}'),                  -- userId cleared: remove, then add
         ('users', '900', 'pending', '{"userId": "900"}')`,                          // an add
    );
    await tdb.query(`INSERT INTO ${schema}.contact_state (mapping, source_key) VALUES ('users', '900')`);
    await synced('orders', 1, 3);
    await deleted('orders', 1, 3);
    expect(await claim()).toEqual(['orders/1', 'orders/2', 'orders/3', 'users/152', 'users/153', 'users/900']);
    await release();

    const approved = await approveRemovals(ctx, { slot, mapping: 'users', decidedBy: 'ops@test' });
    expect(approved).toEqual({ held: true, contacts: 151, later: 0 });
    expect((await claim()).filter((k) => k.startsWith('users/') && Number(k.slice(6)) <= 151)).toHaveLength(151);
  });

  it('an approval covers what was durable when it was made; later removals are judged afresh', async () => {
    await synced('users', 1, 2000);
    await deleted('users', 1, 200, '0/100');
    await deleted('users', 201, 230, '0/300'); // not durable yet
    await durable('0/200');
    expect(await judge('users')).toMatchObject([{ kind: 'held', contacts: 230 }]);
    expect(await approveRemovals(ctx, { slot, mapping: 'users', decidedBy: 'ops@test' })).toEqual({ held: true, contacts: 200, later: 30 });
    // The 30 are few, judged afresh: not held. The approved 200 count no more, pending or back after a failed
    // call (a retry keeps its entry's LSN).
    expect(await judge('users')).toEqual([]);
    await deleted('users', 231, 330, '0/400');
    expect(await judge('users')).toEqual([]); // 130 of 2,000: under 10%
    await deleted('users', 331, 401, '0/500');
    expect(await judge('users')).toMatchObject([{ kind: 'held', contacts: 201 }]); // 30 + 100 + 71: over 10%
    const decisions = (await tdb.query(`SELECT decision, contacts, decided_by FROM ${schema}.removal_decisions`)).rows;
    expect(decisions).toEqual([{ decision: 'approve', contacts: 200, decided_by: 'ops@test' }]);
  });

  it('discard forgets the removals and what synced said; approve and discard of a mapping not held change nothing', async () => {
    expect(await discardRemovals(ctx, { slot, mapping: 'users', decidedBy: 'ops@test' })).toEqual({ held: false, contacts: 0, later: 0 });
    expect(await approveRemovals(ctx, { slot, mapping: 'users', decidedBy: 'ops@test' })).toEqual({ held: false, contacts: 0, later: 0 });
    await synced('users', 1, 150);
    await deleted('users', 1, 120);
    await tdb.query(`UPDATE ${schema}.contact_state SET row = '{"id": 0}', desired = NULL WHERE mapping = 'users' AND source_key = '7'`); // filtered out, row kept
    expect(await judge('users')).toMatchObject([{ kind: 'held', contacts: 120 }]);
    expect(await discardRemovals(ctx, { slot, mapping: 'users', decidedBy: 'ops@test' })).toEqual({ held: true, contacts: 120, later: 0 });
    expect((await tdb.query(`SELECT count(*)::int AS n FROM ${schema}.outbox`)).rows[0]!.n).toBe(0);
    // Deleted rows leave no state; a row still in the table keeps one, no longer synced.
    const states = (await tdb.query(`SELECT source_key, synced FROM ${schema}.contact_state WHERE mapping = 'users' AND source_key::int <= 120`)).rows;
    expect(states).toEqual([{ source_key: '7', synced: null }]);
    expect(await heldRow()).toMatchObject({ held: false });
    expect((await tdb.query(`SELECT decision, contacts FROM ${schema}.removal_decisions`)).rows).toEqual([{ decision: 'discard', contacts: 120 }]);
  });
});
