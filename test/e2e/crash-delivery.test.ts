import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/loader.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { startConnectorProcess, waitStreaming, writeConfig, type RunningConnector } from '../helpers/child.js';
import { projectionDiff } from '../helpers/converge.js';
import { USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The seams between Postgres and Wooxy under SIGKILL and database errors: the connector dies right before
 * a remove is sent, or right after Wooxy accepted it and before its answer is recorded; a database error
 * fails the record of an accepted request. Every case must end with the list equal to the table and every
 * request Wooxy issued reconciled, the row reverted to the state Wooxy last confirmed included.
 */
describe('crash safety of delivery', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let configFile: string;
  let running: RunningConnector | undefined;
  const LIST = 'crash-list';
  const MAPPING = { table: 'public.users', contactListId: LIST, fields: { userId: 'id', email: 'email', firstName: 'first_name' } };
  const mapper = compileMapping(parseConfig({ postgres: { url: 'postgres://x' }, wooxy: { accessToken: 'x' }, mappings: [MAPPING] }, {}).mappings[0]!);

  beforeAll(async () => {
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: LIST }], processing: { delayMs: 20 } });
  });
  afterAll(async () => emulator.close());
  beforeEach(async () => {
    emulator.reset();
    tdb = await createTestDatabase('dcrash');
    await tdb.query(USERS_DDL);
    configFile = writeConfig({
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      // A short attempt budget: a killed leader's claims lapse after timeout + grace + 5 s.
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url, timeoutMs: 1_000, timeoutGraceMs: 500 },
      capture: { flushIntervalMs: 10 },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      http: { port: 0 },
      mappings: [MAPPING],
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
  const stop = async () => {
    running?.proc.kill('SIGTERM');
    await running?.exited;
    running = undefined;
  };
  const converged = async () =>
    waitFor(
      async () => {
        const open = await tdb.query<{ n: number }>(`SELECT ((SELECT count(*) FROM wooxy_cdc.outbox) + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new'))::int AS n`);
        if (open.rows[0]!.n !== 0) return false;
        return projectionDiff((await tdb.query('SELECT * FROM users')).rows, mapper, emulator).length === 0;
      },
      { timeoutMs: 45_000, intervalMs: 100, message: `the list equals the table\n${running?.output() ?? ''}` },
    );
  /** Every requestId the emulator issued for an accepted call is in the requests table, resolved. */
  const everyRequestReconciled = async () => {
    const issued = emulator.requestLog().filter((r) => r.outcome === 'accepted' && r.requestId).map((r) => r.requestId!);
    const { rows } = await tdb.query<{ request_id: string; status: string }>(`SELECT request_id, status FROM wooxy_cdc.requests WHERE request_id = ANY($1)`, [issued]);
    return { issued: issued.length, reconciled: rows.filter((r) => r.status === 'done' || r.status === 'fail').length };
  };

  for (const when of ['before', 'after'] as const) {
    it(`killed ${when} a remove reaches Wooxy, the row then restored as it was: the contact ends in the list`, async () => {
      await start();
      await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (1, 'one@example.com', 'One'), (2, 'two@example.com', 'Two')`);
      await converged();
      await stop();

      const dying = await start(`delivery.${when}-remove`);
      await tdb.query(`DELETE FROM users WHERE id = 1`);
      expect(await dying.exited).toMatchObject({ signal: 'SIGKILL' });
      if (when === 'after') {
        // Wooxy took the remove; its answer died with the process.
        await waitFor(() => !(emulator.contacts(LIST) ?? []).some((c) => c.userId === '1'), { message: 'Wooxy removed contact 1' });
      }
      // The account is restored exactly as Wooxy last confirmed it: as a payload, "unchanged".
      await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (1, 'one@example.com', 'One')`);

      await start();
      await converged();
      expect((emulator.contacts(LIST) ?? []).map((c) => c.userId).sort()).toEqual(['1', '2']);
      // Every request is reconciled but the one whose requestId died with the process before its record.
      const { issued, reconciled } = await everyRequestReconciled();
      expect(reconciled).toBe(when === 'after' ? issued - 1 : issued);
    });
  }

  it('a database error in the record of an accepted call: retried until it lands, and the request is reconciled', async () => {
    await start();
    // A DBA's trigger (or a full disk) makes the record fail while the flag is set.
    await tdb.query(`CREATE TABLE record_blocked (on_ boolean)`);
    await tdb.query(`INSERT INTO record_blocked VALUES (true)`);
    await tdb.query(`CREATE FUNCTION block_records() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF EXISTS (SELECT 1 FROM record_blocked) THEN RAISE EXCEPTION 'injected: the record fails'; END IF; RETURN NEW; END $$`);
    await tdb.query(`CREATE TRIGGER block_records BEFORE INSERT ON wooxy_cdc.requests FOR EACH ROW EXECUTE FUNCTION block_records()`);
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (7, 'seven@example.com', 'Seven')`);
    await waitFor(() => emulator.requestLog().some((r) => r.outcome === 'accepted'), { message: 'Wooxy accepted the add' });
    await waitFor(() => /recording an accepted request failed; retrying until it lands/.test(running!.output()), { message: `the record is retried\n${running!.output()}` });
    expect((await tdb.query(`SELECT 1 FROM wooxy_cdc.requests`)).rowCount).toBe(0);
    // Retried, not re-sent: one call while the record fails.
    expect(emulator.requestLog().filter((r) => r.endpoint === 'contacts/add')).toHaveLength(1);

    await tdb.query(`DELETE FROM record_blocked`);
    await converged();
    const issued = emulator.requestLog().find((r) => r.endpoint === 'contacts/add')!.requestId;
    expect((await tdb.query(`SELECT status FROM wooxy_cdc.requests WHERE request_id = $1`, [issued])).rows).toEqual([{ status: 'done' }]);
    expect(emulator.requestLog().filter((r) => r.endpoint === 'contacts/add')).toHaveLength(1);
  });
});
