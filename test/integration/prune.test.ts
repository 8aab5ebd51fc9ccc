import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrator.js';
import { storeContext } from '../../src/store/context.js';
import { pruneResolved } from '../../src/store/results.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

/** Pruning the requests table on real Postgres: which rows go, which stay, and in bounded statements. */
describe('pruning resolved requests', () => {
  let tdb: TestDatabase;
  let handle: DbHandle;
  const schema = 'cdc_prune';
  const keepResolvedMs = 168 * 3_600_000;

  beforeAll(async () => {
    tdb = await createTestDatabase('prune');
    handle = createDb({ url: tdb.url, schema });
    await migrate(handle.db, schema);
  });
  afterAll(async () => {
    await handle.close();
    await tdb.drop();
  });
  beforeEach(async () => {
    await tdb.query(`TRUNCATE ${schema}.requests, ${schema}.outbox`);
  });

  /** `n` requests named prefix-1…n, resolved (or sent, for 'new') `ageHours` ago. */
  const requests = (prefix: string, n: number, status: string, ageHours: number) =>
    tdb.query(
      `INSERT INTO ${schema}.requests (request_id, mapping, list_id, op, batch_id, contact_count, status, sent_at, resolved_at, resolved_via)
       SELECT $1 || '-' || g, 'users', 'l', 'add', 'b', 1, $2, now() - make_interval(hours => $3), CASE WHEN $2 <> 'new' THEN now() - make_interval(hours => $3) END,
         CASE WHEN $2 <> 'new' THEN 'poll' END
       FROM generate_series(1, $4::int) g`,
      [prefix, status, ageHours, n],
    );
  const ids = async () => (await tdb.query<{ request_id: string }>(`SELECT request_id FROM ${schema}.requests ORDER BY request_id`)).rows.map((r) => r.request_id);

  it('deletes requests resolved before the retention, of every final status, and keeps recent and unresolved ones', async () => {
    await requests('old-done', 2, 'done', 200);
    await requests('old-fail', 1, 'fail', 169);
    await requests('old-expired', 1, 'expired', 300);
    await requests('recent-done', 2, 'done', 167);
    await requests('old-new', 1, 'new', 400);
    expect(await pruneResolved(storeContext(handle), null, { keepResolvedMs })).toBe(4);
    expect(await ids()).toEqual(['old-new-1', 'recent-done-1', 'recent-done-2']);
    expect(await pruneResolved(storeContext(handle), null, { keepResolvedMs })).toBe(0);
  });

  it('never deletes a request that still has in-flight outbox entries', async () => {
    await requests('old-done', 2, 'done', 200);
    await tdb.query(
      `INSERT INTO ${schema}.outbox (mapping, source_key, state, request_id, sent_op, sent_at) VALUES ('users', '1', 'inflight', 'old-done-1', 'add', now() - interval '9 days')`,
    );
    expect(await pruneResolved(storeContext(handle), null, { keepResolvedMs })).toBe(1);
    expect(await ids()).toEqual(['old-done-1']);
    // A pending entry that once named the request is no reason to keep it.
    await tdb.query(`UPDATE ${schema}.outbox SET state = 'pending'`);
    expect(await pruneResolved(storeContext(handle), null, { keepResolvedMs })).toBe(1);
    expect(await ids()).toEqual([]);
  });

  it('works through a backlog in bounded statements, and stops after maxBatches', async () => {
    await requests('old', 2_500, 'done', 200);
    const statements: number[] = [];
    const counting = { ...handle, db: handle.db.withPlugin({ transformQuery: (a) => (statements.push(1), a.node), transformResult: async (a) => a.result }) };
    expect(await pruneResolved(storeContext(counting), null, { keepResolvedMs, batchSize: 1_000, maxBatches: 2 })).toBe(2_000);
    expect(statements).toHaveLength(2);
    expect(await pruneResolved(storeContext(counting), null, { keepResolvedMs, batchSize: 1_000 })).toBe(500);
    expect(await ids()).toEqual([]);
  });
});
