import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrator.js';
import { storeContext } from '../../src/store/context.js';
import { rejectContact } from '../../src/store/delivery.js';
import { pruneHistory, readHistory } from '../../src/store/history.js';
import { applyResult, expireRequests, type InflightEntry, type ResultRow } from '../../src/store/results.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

/**
 * The history rows the store writes beside the statements that settle a contact's call, and their pruning,
 * on a real Postgres: the rows are made by hand as delivery would leave them, so each case is exact.
 */
describe('contact history', () => {
  let tdb: TestDatabase;
  let handle: DbHandle;
  const schema = 'cdc_history';
  const day = 86_400_000;

  beforeAll(async () => {
    tdb = await createTestDatabase('history');
    handle = createDb({ url: tdb.url, schema });
    await migrate(handle.db, schema);
  });
  afterAll(async () => {
    await handle.close();
    await tdb.drop();
  });
  beforeEach(async () => {
    await tdb.query(`TRUNCATE ${schema}.requests, ${schema}.outbox, ${schema}.contact_state, ${schema}.dead_letters, ${schema}.history`);
  });

  /** A request of `op` whose contacts (keys) are in flight, each with a state. */
  const inFlight = async (requestId: string, op: string, keys: string[], stray: unknown[] = []) => {
    await tdb.query(
      `INSERT INTO ${schema}.requests (request_id, mapping, list_id, op, batch_id, contact_count, sent_at, stray)
       VALUES ($1, 'users', 'l', $2, 'b', $3, now() - interval '1 minute', $4)`,
      [requestId, op, keys.length, stray.length ? JSON.stringify(stray) : null],
    );
    for (const k of keys) {
      await tdb.query(`INSERT INTO ${schema}.contact_state (mapping, source_key, desired) VALUES ('users', $1, $2) ON CONFLICT DO NOTHING`, [k, { userId: k, email: `u${k}@example.com` }]);
      await tdb.query(
        `INSERT INTO ${schema}.outbox (mapping, source_key, state, payload, request_id, batch_id, sent_op, sent_at, maybe_ids)
         VALUES ('users', $1, 'inflight', $2, $3, 'b', $4, now() - interval '1 minute', $5)`,
        [k, op === 'remove' ? null : { userId: k, email: `u${k}@example.com` }, requestId, op, { userId: k }],
      );
    }
  };

  const row = (e: InflightEntry, over: Partial<ResultRow>): ResultRow => ({
    m: e.mapping, k: e.source_key, p: e.payload, l: e.lsn, op: e.sent_op, ids: { userId: e.source_key, email: `u${e.source_key}@example.com` },
    kind: 'success', hint: null, delay: 0, a: e.attempts + 1, code: null, human: null, ...over,
  });

  it('writes one row per contact of an applied answer: success, a fallback with its hint, a dead letter', async () => {
    const ctx = storeContext(handle);
    await inFlight('req-1', 'add', ['1', '2', '3']);
    const report = await applyResult(ctx, null, { id: 'req-1', status: 'done' }, 'poll', (entries) =>
      entries.map((e) =>
        e.source_key === '1'
          ? row(e, {})
          : e.source_key === '2'
            ? row(e, { kind: 'retry', hint: 'update', code: 'ERR_CONTACT_EXISTS', human: 'A contact with userId 2 already exists in list l' })
            : row(e, { kind: 'dead', code: 'ERR_INVALID_VARIABLE_NAME', human: 'Variable plan does not exist in list l' }),
      ),
    );
    expect(report.outcome).toBe('applied');
    expect(await readHistory(ctx, 'users', '1')).toEqual([
      expect.objectContaining({ requestId: 'req-1', op: 'add', outcome: 'success', code: null, humanError: null, hint: null, ids: { userId: '1', email: 'u1@example.com' } }),
    ]);
    expect(await readHistory(ctx, 'users', '2')).toEqual([
      expect.objectContaining({ requestId: 'req-1', op: 'add', outcome: 'retry', code: 'ERR_CONTACT_EXISTS', hint: 'update', humanError: expect.stringContaining('already exists') }),
    ]);
    expect(await readHistory(ctx, 'users', '3')).toEqual([expect.objectContaining({ outcome: 'dead', code: 'ERR_INVALID_VARIABLE_NAME' })]);
    const [h] = await readHistory(ctx, 'users', '1');
    // sent_at is the call's record, not the answer's.
    expect(Date.parse(h!.resolvedAt) - Date.parse(h!.sentAt)).toBeGreaterThan(50_000);

    // An answer applied again (a late webhook after the poll) writes nothing more.
    expect((await applyResult(ctx, null, { id: 'req-1', status: 'done' }, 'webhook', (entries) => entries.map((e) => row(e, {})))).outcome).toBe('duplicate');
    expect((await tdb.query(`SELECT count(*)::int AS n FROM ${schema}.history`)).rows[0]!.n).toBe(3);
  });

  it('writes the contacts of an expired request, and the stray contacts sent again, naming the request', async () => {
    const ctx = storeContext(handle);
    await inFlight('req-old', 'update', ['4']);
    await inFlight('req-stray', 'add', ['5'], [{ m: 'users', k: '6', ids: { userId: '6' } }]);
    await tdb.query(`INSERT INTO ${schema}.contact_state (mapping, source_key, desired) VALUES ('users', '6', '{"userId":"6"}')`);
    await expireRequests(ctx, null, ['req-old']);
    await applyResult(ctx, null, { id: 'req-stray', status: 'done' }, 'poll', (entries) => entries.map((e) => row(e, {})));
    expect(await readHistory(ctx, 'users', '4')).toEqual([expect.objectContaining({ requestId: 'req-old', op: 'update', outcome: 'expired', ids: { userId: '4' } })]);
    expect(await readHistory(ctx, 'users', '6')).toEqual([expect.objectContaining({ requestId: 'req-stray', op: 'add', outcome: 'stray', ids: { userId: '6' } })]);
    // Both went back to pending as well: the history rode on the statements that requeue them.
    expect((await tdb.query<{ source_key: string }>(`SELECT source_key FROM ${schema}.outbox WHERE state = 'pending' ORDER BY 1`)).rows.map((r) => r.source_key)).toEqual(['4', '6']);
  });

  it('writes a contact Wooxy refused at the call, with no request id and the identifiers it was marked with', async () => {
    const ctx = storeContext(handle);
    await tdb.query(`INSERT INTO ${schema}.leader (slot, epoch, holder) VALUES ('s', 1, 'test') ON CONFLICT (slot) DO NOTHING`);
    await tdb.query(
      `INSERT INTO ${schema}.outbox (mapping, source_key, state, payload, lsn, claim_epoch, batch_id, sent_at, maybe_ids)
       VALUES ('users', '37', 'pending', '{"userId":"37","sourceId":"nope"}', '0/10', 1, 'b', now(), '{"userId":"37"}')`,
    );
    await rejectContact(ctx, { slot: 's', epoch: '1' }, { mapping: 'users', key: '37', lsn: '0/10' }, { op: 'add', payload: { userId: '37' }, code: 'WOOXY_VALIDATION', message: 'sourceId nope not found in your account at contact position 0' });
    expect(await readHistory(ctx, 'users', '37')).toEqual([
      expect.objectContaining({ requestId: null, op: 'add', outcome: 'dead', code: 'WOOXY_VALIDATION', humanError: expect.stringContaining('sourceId nope'), ids: { userId: '37' } }),
    ]);
    expect((await tdb.query(`SELECT count(*)::int AS n FROM ${schema}.outbox`)).rows[0]!.n).toBe(0);
  });

  it('writes nothing with history off', async () => {
    const ctx = storeContext(handle, { history: false });
    await inFlight('req-off', 'add', ['7'], [{ m: 'users', k: '8', ids: null }]);
    await applyResult(ctx, null, { id: 'req-off', status: 'done' }, 'poll', (entries) => entries.map((e) => row(e, {})));
    await inFlight('req-off-2', 'add', ['9']);
    await expireRequests(ctx, null, ['req-off-2']);
    expect((await tdb.query(`SELECT count(*)::int AS n FROM ${schema}.history`)).rows[0]!.n).toBe(0);
    expect((await tdb.query(`SELECT count(*)::int AS n FROM ${schema}.outbox WHERE state = 'inflight'`)).rows[0]!.n).toBe(0);
  });

  it('prunes rows older than the retention, oldest first, in bounded statements', async () => {
    const ctx = storeContext(handle);
    await tdb.query(
      `INSERT INTO ${schema}.history (mapping, source_key, request_id, op, sent_at, resolved_at, outcome)
       SELECT 'users', g::text, 'r' || g, 'add', now() - make_interval(days => d), now() - make_interval(days => d), 'success'
       FROM generate_series(1, 2500) g, LATERAL (SELECT CASE WHEN g <= 2300 THEN 31 ELSE 29 END AS d) a`,
    );
    const statements: number[] = [];
    const counting = storeContext({ ...handle, db: handle.db.withPlugin({ transformQuery: (a) => (statements.push(1), a.node), transformResult: async (a) => a.result }) });
    expect(await pruneHistory(counting, null, { keepMs: 30 * day, batchSize: 1_000, maxBatches: 2 })).toBe(2_000);
    expect(statements).toHaveLength(2);
    expect(await pruneHistory(counting, null, { keepMs: 30 * day, batchSize: 1_000 })).toBe(300);
    const left = await tdb.query<{ n: number; oldest: number }>(`SELECT count(*)::int AS n, min(source_key::int) AS oldest FROM ${schema}.history`);
    expect(left.rows[0]).toEqual({ n: 200, oldest: 2301 });
    // keepDays 0: everything goes.
    expect(await pruneHistory(ctx, null, { keepMs: 0 })).toBe(200);
  });
});
