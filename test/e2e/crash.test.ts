import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startConnectorProcess, waitStreaming, writeConfig, type RunningConnector } from '../helpers/child.js';
import { USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The durability boundary under SIGKILL: killed inside the outbox transaction (before COMMIT), nothing is
 * durable and nothing was acknowledged, so the slot resends it all; killed after COMMIT but before the
 * acknowledgement, the slot resends a transaction that is already durable, and it must not be enqueued again.
 */
describe('crash safety of capture', () => {
  let tdb: TestDatabase;
  let configFile: string;
  let running: RunningConnector | undefined;

  beforeEach(async () => {
    tdb = await createTestDatabase('crash');
    await tdb.query(USERS_DDL);
    configFile = writeConfig({
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: 'http://127.0.0.1:9/v3' },
      capture: { flushIntervalMs: 10 },
      snapshot: { onStart: false }, // the stream's crash safety alone: a snapshot may not write these rows first
      http: { port: 0 },
      mappings: [{ table: 'public.users', contactListId: 'list-1', fields: { userId: 'id', email: 'email' } }],
    });
  });
  afterEach(async () => {
    running?.proc.kill('SIGKILL');
    await running?.exited;
    running = undefined;
    await tdb.drop();
  });

  const start = async (failpoint?: string) => {
    running = startConnectorProcess(configFile, { WOOXY_ACCESS_TOKEN: 'tok', ...(failpoint ? { WOOXY_CDC_FAILPOINT: failpoint } : {}) });
    await waitStreaming(running, tdb.query, tdb.slot);
    return running;
  };
  const outbox = async () =>
    (await tdb.query<{ source_key: string; state: string }>('SELECT source_key, state FROM wooxy_cdc.outbox ORDER BY source_key::int, state')).rows;
  const positions = async () =>
    (
      await tdb.query<{ durable: string | null; confirmed: string; behind: boolean | null }>(
        `SELECT r.durable_lsn::text AS durable, s.confirmed_flush_lsn::text AS confirmed, s.confirmed_flush_lsn < r.durable_lsn AS behind
         FROM pg_replication_slots s LEFT JOIN wooxy_cdc.replication_state r ON r.slot = s.slot_name WHERE s.slot_name = $1`,
        [tdb.slot],
      )
    ).rows[0]!;

  it('killed before the outbox commit: nothing is durable, and on restart every change arrives once', async () => {
    const first = await start('outbox.before-commit');
    await tdb.query(`INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com'), (3, 'c@example.com')`);
    expect(await first.exited).toMatchObject({ signal: 'SIGKILL' });
    expect(await outbox()).toEqual([]);
    expect((await positions()).durable).toBeNull();

    const second = await start();
    await waitFor(async () => (await outbox()).length === 3, { message: 'all three changes in the outbox' });
    expect(await outbox()).toEqual(['1', '2', '3'].map((k) => ({ source_key: k, state: 'pending' })));
    await waitFor(async () => (await positions()).behind === false, { message: 'slot acknowledged up to the durable LSN' });

    second.proc.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });

  it('killed after the commit but before the acknowledgement: the replayed transaction is not enqueued again', async () => {
    const first = await start('outbox.after-commit');
    await tdb.query(`INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com'), (3, 'c@example.com')`);
    expect(await first.exited).toMatchObject({ signal: 'SIGKILL' });
    expect(await outbox()).toHaveLength(3);
    const afterCrash = await positions();
    expect(afterCrash.behind, 'the slot was not acknowledged past the durable LSN').toBe(true);

    // Delivery has meanwhile sent these contacts: were the replay enqueued, a second (pending) entry would appear.
    await tdb.query(`UPDATE wooxy_cdc.outbox SET state = 'inflight', request_id = 'r1'`);
    await start();
    await tdb.query(`INSERT INTO users (id, email) VALUES (4, 'd@example.com')`);
    await waitFor(async () => (await outbox()).length === 4, { message: 'the change after the crash arrives' });
    expect(await outbox()).toEqual([
      { source_key: '1', state: 'inflight' },
      { source_key: '2', state: 'inflight' },
      { source_key: '3', state: 'inflight' },
      { source_key: '4', state: 'pending' },
    ]);
    await waitFor(async () => (await positions()).behind === false, { message: 'slot acknowledged' });
  });
});
