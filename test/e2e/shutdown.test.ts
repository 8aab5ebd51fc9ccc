import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { startConnectorProcess, waitStreaming, writeConfig } from '../helpers/child.js';
import { USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A graceful stop in the middle of a workload: rows keep arriving and calls are in flight when SIGTERM comes.
 * The process must exit 0, and whatever it recorded as durable must be acknowledged to the slot — a slot
 * behind the durable LSN means a graceful stop left work to be replayed (and WAL pinned) for nothing.
 */
describe('SIGTERM during a workload', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  beforeAll(async () => {
    tdb = await createTestDatabase('sigterm');
    await tdb.query(USERS_DDL);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: 'l' }], processing: { delayMs: 50 } });
  });
  afterAll(async () => {
    await emulator.close();
    await tdb.drop();
  });

  it('drains, acknowledges everything durable, and exits 0', async () => {
    const configFile = writeConfig({
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url },
      capture: { flushIntervalMs: 20 },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      http: { port: 0 },
      mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email', firstName: 'first_name' } }],
    });
    const child = startConnectorProcess(configFile, { WOOXY_ACCESS_TOKEN: 'tok' });
    await waitStreaming(child, tdb.query, tdb.slot);

    // A steady stream of small transactions, still running while the connector stops.
    let writing = true;
    let next = 1;
    const workload = (async () => {
      while (writing) {
        const ids = Array.from({ length: 20 }, () => next++);
        await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'n' || g FROM unnest($1::int[]) g`, [ids]);
        await tdb.query(`UPDATE users SET first_name = first_name || '+' WHERE id = $1`, [ids[0]]);
      }
    })();
    await waitFor(async () => (emulator.contacts('l')?.length ?? 0) >= 100, { timeoutMs: 30_000, message: 'delivery under way' });

    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    writing = false;
    await workload;
    expect(exit, child.output()).toEqual({ code: 0, signal: null });
    expect(child.output()).toMatch(/"msg":"stopped"/);

    // The walsender has let the slot go once its session ended; then its position is final.
    await waitFor(async () => (await tdb.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [tdb.slot])).rows[0]?.active === false, {
      message: 'slot released',
    });
    const { rows } = await tdb.query<{ confirmed: string; durable: string; ok: boolean }>(
      `SELECT s.confirmed_flush_lsn::text AS confirmed, r.durable_lsn::text AS durable, s.confirmed_flush_lsn >= r.durable_lsn AS ok
       FROM pg_replication_slots s JOIN wooxy_cdc.replication_state r ON r.slot = s.slot_name WHERE s.slot_name = $1`,
      [tdb.slot],
    );
    expect(rows[0]?.durable).not.toBe('0/0');
    const notable = child.output().split('\n').filter((l) => /"level":"(warn|error)"|advanced|stopp/.test(l)).join('\n');
    expect(rows[0], `confirmed ${rows[0]?.confirmed} vs durable ${rows[0]?.durable}\n${notable}`).toMatchObject({ ok: true });
  });

  it('a second signal exits at once while the first is still draining', async () => {
    // Wooxy holds every call without answering: the first SIGTERM waits for the call in flight (the drain).
    emulator.setFaults({ timeoutRate: 1 });
    const configFile = writeConfig({
      postgres: { url: tdb.url, slot: `${tdb.slot}_2`, publication: tdb.publication, schema: 'wooxy_cdc_2' },
      wooxy: { accessToken: 'tok', baseUrl: emulator.url, timeoutMs: 60_000 },
      delivery: { idleIntervalMs: 20, drainTimeoutMs: 60_000 },
      http: { port: 0 },
      mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email' } }],
    });
    const child = startConnectorProcess(configFile);
    try {
      await waitStreaming(child, tdb.query, `${tdb.slot}_2`);
      await tdb.query(`INSERT INTO users (id, email) VALUES (100000, 'held@example.com')`);
      await waitFor(() => emulator.stats().inFlight >= 1, { message: 'a call held by Wooxy' });
      child.proc.kill('SIGTERM');
      await waitFor(() => /stopping: draining/.test(child.output()), { message: 'draining' });
      child.proc.kill('SIGTERM');
      expect(await child.exited).toEqual({ code: 143, signal: null });
      expect(child.output()).toMatch(/second signal: exiting without draining/);
    } finally {
      emulator.setFaults({ timeoutRate: 0 });
    }
  });

  it('abandons a call that outlives the drain timeout; its contact stays pending, to be sent again', async () => {
    emulator.setFaults({ timeoutRate: 1 });
    const slot = `${tdb.slot}_3`;
    const configFile = writeConfig({
      postgres: { url: tdb.url, slot, publication: tdb.publication, schema: 'wooxy_cdc_3' },
      wooxy: { accessToken: 'tok', baseUrl: emulator.url, timeoutMs: 60_000 },
      delivery: { idleIntervalMs: 20, drainTimeoutMs: 300 },
      // The earlier tests' rows are not snapshotted: the one call Wooxy holds must be this contact's.
      snapshot: { onStart: false },
      http: { port: 0 },
      mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email' } }],
    });
    const child = startConnectorProcess(configFile);
    try {
      await waitStreaming(child, tdb.query, slot);
      await tdb.query(`INSERT INTO users (id, email) VALUES (200000, 'abandoned@example.com')`);
      await waitFor(() => emulator.stats().inFlight >= 1, { message: 'a call held by Wooxy' });
      child.proc.kill('SIGTERM');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      expect(child.output()).toMatch(/calls still in flight after the drain timeout: abandoned/);
    } finally {
      emulator.setFaults({ timeoutRate: 0 });
    }
    // Not recorded as sent: still pending, with the identifiers Wooxy may now hold, so the next run resends it.
    const { rows } = await tdb.query(`SELECT state, maybe_ids FROM wooxy_cdc_3.outbox WHERE source_key = '200000'`);
    expect(rows).toMatchObject([{ state: 'pending', maybe_ids: expect.objectContaining({ userId: '200000' }) }]);
  });
});
