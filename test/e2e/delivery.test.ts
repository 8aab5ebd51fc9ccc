import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector.js';
import { freePort } from '../../src/db/local-cluster.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { projectionDiff } from '../helpers/converge.js';
import { testConfig, testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'list-1';
const TOKEN = 'test-token';

/** Real Postgres + the emulator, processing order randomised: the list must end equal to the table. */
describe('delivery and reconciliation', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector | undefined;

  beforeAll(async () => {
    tdb = await createTestDatabase('deliver');
  });
  afterAll(async () => tdb.drop());

  beforeEach(async () => {
    await tdb.reset(USERS_DDL);
    emulator = await createEmulator({
      seed: 7,
      tokens: [TOKEN],
      lists: [{ id: LIST, variables: [{ name: 'plan', type: 'string' }] }],
      processing: { delayMs: 15, randomOrder: true },
    });
  });
  afterEach(async () => {
    await connector?.stop();
    connector = undefined;
    await emulator.close();
  });

  const start = async (overrides: Record<string, unknown> = {}) => {
    const base = testConfig(tdb);
    const config = testConfig(tdb, {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc' },
      wooxy: { accessToken: TOKEN, baseUrl: emulator.url, timeoutMs: 2000, maxRetries: 3 },
      delivery: { idleIntervalMs: 30, maxAttempts: 6 },
      reconcile: { pollIntervalMs: 100 },
      mappings: base.mappings.map(() => ({
        table: 'public.users',
        contactListId: LIST,
        key: 'id',
        fields: { userId: 'id', email: 'email', phoneNumber: 'phone', firstName: 'first_name', lastName: 'last_name' },
      })),
      ...overrides,
    });
    connector = testConnector(config);
    await connector.start();
    await waitFor(() => connector!.replication?.isStreaming, { message: 'streaming' });
    return connector;
  };

  const rows = async () => (await tdb.query('SELECT * FROM users ORDER BY id')).rows;
  const converged = async (c: Connector) => {
    await waitFor(
      async () => {
        const { rows: open } = await tdb.query(`SELECT (SELECT count(*) FROM wooxy_cdc.outbox)::int + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS n`);
        if (open[0]!.n !== 0) return false;
        return projectionDiff(await rows(), c.mappers[0]!, emulator).length === 0;
      },
      { timeoutMs: 45_000, intervalMs: 100, message: 'the list equals the table' },
    ).catch(async (e: Error) => {
      const diff = projectionDiff(await rows(), c.mappers[0]!, emulator).slice(0, 10);
      const outbox = (await tdb.query('SELECT mapping, source_key, state, op_hint, attempts, last_error FROM wooxy_cdc.outbox LIMIT 10')).rows;
      throw new Error(`${e.message}\ndiff: ${JSON.stringify(diff)}\noutbox: ${JSON.stringify(outbox)}`);
    });
  };

  it('converges after inserts, updates (with identifier changes) and deletes, by polling', async () => {
    const c = await start();
    await tdb.query(`INSERT INTO users (id, email, phone, first_name) SELECT g, 'u' || g || '@example.com', '+1555000' || lpad(g::text, 4, '0'), 'F' || g FROM generate_series(1, 400) g`);
    await tdb.query(`UPDATE users SET first_name = 'G' || id WHERE id % 3 = 0`);
    await tdb.query(`UPDATE users SET email = 'changed' || id || '@example.com' WHERE id % 7 = 0`);
    await tdb.query(`DELETE FROM users WHERE id % 11 = 0`);
    await converged(c);
    // More changes once the first requests resolved: identifier changes address contacts by what Wooxy knows.
    await tdb.query(`UPDATE users SET email = 'again' || id || '@example.com', phone = NULL WHERE id % 5 = 0`);
    await tdb.query(`UPDATE users SET last_name = 'L' || id WHERE id % 4 = 0`);
    await tdb.query(`DELETE FROM users WHERE id % 13 = 0`);
    await tdb.query(`INSERT INTO users (id, email) VALUES (13, 'back13@example.com')`);
    await converged(c);
    expect(emulator.stats().peakConcurrency).toBeLessThanOrEqual(10);
    // A contact deleted at the source and removed from Wooxy leaves no state behind; every other row keeps one.
    const { rows: states } = await tdb.query<{ n: number; live: number }>(
      `SELECT count(*)::int AS n, (SELECT count(*)::int FROM users) AS live FROM wooxy_cdc.contact_state`,
    );
    expect(states[0]!.n).toBe(states[0]!.live);
    const { rows: resolved } = await tdb.query(`SELECT resolved_via, count(*)::int AS n FROM wooxy_cdc.requests GROUP BY 1`);
    expect(resolved.map((r) => String(r.resolved_via))).toEqual(['poll']);
  });

  it('resolves every request through the webhook receiver', async () => {
    // Polling is off here, so a webhook the emulator gives up on would never resolve: let it retry long
    // enough for a loaded CI machine.
    await emulator.close();
    emulator = await createEmulator({
      seed: 7,
      tokens: [TOKEN],
      lists: [{ id: LIST }],
      processing: { delayMs: 15, randomOrder: true },
      webhooks: { maxAttempts: 30, timeoutMs: 20_000, maxDelayMs: 2_000 },
    });
    const port = await freePort();
    const secret = 'a'.repeat(12) + 'unguessable-secret-xyz';
    const c = await start({
      http: { port, host: '127.0.0.1' },
      webhook: { publicUrl: `http://127.0.0.1:${port}`, secret },
      reconcile: { pollIntervalMs: 5_000 },
    });
    await tdb.query(`INSERT INTO users (id, email) SELECT g, 'w' || g || '@example.com' FROM generate_series(1, 150) g`);
    await tdb.query(`UPDATE users SET first_name = 'W' WHERE id <= 50`);
    await converged(c);
    const { rows: via } = await tdb.query(`SELECT DISTINCT resolved_via FROM wooxy_cdc.requests`);
    // Polling runs beside the webhook (its interval shrinks while requests are outstanding); a status that both
    // bring is applied once. The webhook must have resolved requests on its own.
    expect(via.map((r) => String(r.resolved_via))).toContain('webhook');
    expect((await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.requests WHERE resolved_via = 'webhook'`)).rows[0]!.n).toBeGreaterThan(0);
    // A wrong secret changes nothing and is refused.
    const res = await fetch(`http://127.0.0.1:${port}/webhooks/wooxy/wrong`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
  });

  it('falls back: an add of an existing contact becomes an update, an update of a missing one an add, a remove of a missing one is done', async () => {
    const c = await start();
    // Wooxy already knows user 1 (e.g. from an earlier import): the add is answered ERR_CONTACT_EXISTS.
    const client = c.client;
    const pre = await client.add({ contactListId: LIST, contacts: [{ userId: '1', email: 'old1@example.com' }] });
    await waitFor(() => emulator.request(pre.requestId)?.status === 'done');
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (1, 'one@example.com', 'One'), (2, 'two@example.com', 'Two'), (3, 'three@example.com', 'Three')`);
    await converged(c);
    // Someone removes users 2 and 3 from the list behind our back.
    const rm = await client.remove({ contactListId: LIST, userIds: ['2', '3'] });
    await waitFor(() => emulator.request(rm.requestId)?.status === 'done');
    await tdb.query(`UPDATE users SET first_name = 'Deux' WHERE id = 2`); // update → ERR_CONTACT_NOT_EXISTS → add
    await tdb.query(`DELETE FROM users WHERE id = 3`); // remove → ERR_CONTACT_NOT_EXISTS → done
    await converged(c);
    const results = await c.metrics.contactResults.get();
    const codes = results.values.map((v) => v.labels.result);
    expect(codes).toEqual(expect.arrayContaining(['ERR_CONTACT_EXISTS', 'ERR_CONTACT_NOT_EXISTS', 'success']));
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
  });

  it('retries system errors and API faults, and never exceeds the concurrency limit', async () => {
    emulator.setFaults({ contactErrorRate: 0.2, serverErrorRate: 0.1, rateLimitRate: 0.05, latencyMs: 5 });
    const c = await start();
    await tdb.query(`INSERT INTO users (id, email) SELECT g, 'f' || g || '@example.com' FROM generate_series(1, 300) g`);
    await waitFor(async () => (await c.metrics.contactResults.get()).values.some((v) => v.labels.result === 'ERR_SYSTEM_ERROR'));
    emulator.setFaults({ contactErrorRate: 0, serverErrorRate: 0, rateLimitRate: 0 });
    await converged(c);
    expect(emulator.stats().peakConcurrency).toBeLessThanOrEqual(10);
  });

  it('dead-letters rejected contacts with the vendor message while the rest flows', async () => {
    await start({
      mappings: [
        {
          table: 'public.users',
          contactListId: LIST,
          fields: { userId: 'id', email: 'email', phoneNumber: 'phone' },
          variables: { plan: 'plan' },
          filter: [{ column: 'status', notEquals: 'banned' }],
        },
      ],
    });
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (1, 'ok1@example.com', '+15555550001'), (2, 'bad@example.com', 'not-a-phone')`);
    await tdb.query(`UPDATE users SET status = 'banned' WHERE id = 1`);
    await waitFor(async () => (await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n >= 1);
    const dead = (await tdb.query('SELECT source_key, error_code, human_error FROM wooxy_cdc.dead_letters ORDER BY source_key')).rows;
    expect(dead[0]).toMatchObject({ source_key: '2', error_code: 'ROW_INVALID', human_error: expect.stringContaining('not-a-phone is not a valid E.164 phone number') });
    // A contact-level rejection from Wooxy (a date variable whose value is no date) is isolated and dead-lettered.
    emulator.defineList({ id: LIST, variables: [{ name: 'plan', type: 'date' }] });
    await tdb.query(`INSERT INTO users (id, email, plan) VALUES (5, 'v5@example.com', 'pro'), (6, 'v6@example.com', '2024-02-29')`);
    await waitFor(async () => (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters WHERE source_key = '5'`)).rows[0]!.n === 1);
    const v = (await tdb.query(`SELECT error_code, human_error FROM wooxy_cdc.dead_letters WHERE source_key = '5'`)).rows[0];
    expect(v).toMatchObject({ error_code: 'WOOXY_VALIDATION', human_error: expect.stringContaining('Variable plan type is date, but value is not valid date') });
    await waitFor(() => (emulator.contacts(LIST) ?? []).some((c) => c.userId === '6'), { message: 'the valid contact of the batch arrives' });
  });

  it('pauses, without dead-lettering anyone, when Wooxy rejects the list itself (a variable missing from it), and resumes once it exists', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        done();
      },
    });
    const config = testConfig(tdb, {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc' },
      wooxy: { accessToken: TOKEN, baseUrl: emulator.url, timeoutMs: 2000, maxRetries: 3 },
      delivery: { idleIntervalMs: 30, pauseRetryMs: 150 },
      reconcile: { pollIntervalMs: 100 },
      // "tier" is not a variable of the list: every contact carries it, so every add is refused.
      mappings: [{ table: 'public.users', contactListId: LIST, key: 'id', fields: { userId: 'id', email: 'email' }, variables: { plan: 'plan', tier: 'status' } }],
    });
    const c = (connector = testConnector(config, { log: createLogger({ level: 'warn', destination }) }));
    await c.start();
    await waitFor(() => c.replication?.isStreaming, { message: 'streaming' });
    await tdb.query(`INSERT INTO users (id, email, plan) SELECT g, 't' || g || '@example.com', 'pro' FROM generate_series(1, 40) g`);
    await waitFor(async () => (await c.metrics.deliveryPaused.get()).values[0]?.value === 1, { message: 'delivery paused' });
    // Several retries, each one call: splitting would have made 79 calls and dead-lettered all 40.
    const adds = () => emulator.stats().byEndpoint['contacts/add'].validation ?? 0;
    await waitFor(() => adds() >= 4, { message: 'retried after pauseRetryMs' });
    expect(adds()).toBeLessThan(20);
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
    expect((await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE state = 'pending'`)).rows[0]!.n).toBe(40);
    const paused = lines.map((l) => JSON.parse(l) as { level: string; msg: string; mapping?: string; code?: string }).filter((l) => l.msg.startsWith('delivery paused'));
    expect(paused).toHaveLength(1);
    expect(paused[0]).toMatchObject({ level: 'error', mapping: 'users', code: 'WOOXY_LIST_REJECTED', msg: expect.stringContaining('Variable tier not found in list') });
    expect(lines.join('\n')).not.toContain(TOKEN);

    // The variable is created on the list: the next retry goes through and the list fills.
    emulator.defineList({ id: LIST, variables: [{ name: 'plan', type: 'string' }, { name: 'tier', type: 'string' }] });
    await converged(c);
    expect((await c.metrics.deliveryPaused.get()).values[0]?.value).toBe(0);
    expect(emulator.contacts(LIST)?.find((x) => x.userId === '7')).toMatchObject({ variables: { plan: 'pro', tier: 'active' } });
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
  });

  it('isolates the contact a request-level rejection is about, and sends the rest of its batch', async () => {
    const c = await start({
      mappings: [{ table: 'public.users', contactListId: LIST, fields: { userId: 'id', email: 'email', sourceId: 'plan' } }],
    });
    // The account knows no sourceId "nope": Wooxy rejects the whole request naming contact position {i}.
    await tdb.query(`INSERT INTO users (id, email, plan) SELECT g, 's' || g || '@example.com', CASE WHEN g = 37 THEN 'nope' END FROM generate_series(1, 80) g`);
    await waitFor(async () => (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters`)).rows[0]!.n === 1);
    await waitFor(async () => (emulator.contacts(LIST) ?? []).length === 79);
    const dead = (await tdb.query(`SELECT source_key, error_code, human_error FROM wooxy_cdc.dead_letters`)).rows[0];
    expect(dead).toMatchObject({ source_key: '37', error_code: 'WOOXY_VALIDATION', human_error: expect.stringContaining('sourceId nope not found in your account') });
    void c;
  });

  it('pauses on an authorization failure, says so, and resumes when the token works again', async () => {
    emulator.setFaults({ authError: 'invalid' });
    const c = await start({ delivery: { idleIntervalMs: 30, pauseRetryMs: 200 } });
    await tdb.query(`INSERT INTO users (id, email) VALUES (1, 'p1@example.com')`);
    await waitFor(async () => (await c.metrics.deliveryPaused.get()).values[0]?.value === 1, { message: 'delivery paused' });
    expect(emulator.contacts(LIST)).toEqual([]);
    emulator.setFaults({ authError: null });
    await converged(c);
    expect((await c.metrics.deliveryPaused.get()).values[0]?.value).toBe(0);
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
  });

  it('orders identifier moves: a user takes an email another gave up, and two users swap emails in one transaction', async () => {
    const c = await start();
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (1, 'a@example.com', '+15555550001'), (2, 'b@example.com', '+15555550002'), (3, 'c@example.com', NULL)`);
    await converged(c);
    await tdb.query(`BEGIN; UPDATE users SET email = 'tmp@example.com' WHERE id = 1; UPDATE users SET email = 'a@example.com' WHERE id = 2; UPDATE users SET email = 'b@example.com' WHERE id = 1; COMMIT;`);
    await converged(c);
    await tdb.query(`BEGIN; UPDATE users SET email = 'c2@example.com' WHERE id = 3; UPDATE users SET phone = '+15555550001', email = 'c@example.com' WHERE id = 3; UPDATE users SET phone = NULL WHERE id = 1; COMMIT;`);
    await converged(c);
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
  });

  it('prunes, as leader, the requests resolved longer ago than reconcile.keepResolvedHours, and keeps the rest', async () => {
    const reconcile = { pollIntervalMs: 100, keepResolvedHours: 24 };
    const c = await start({ reconcile });
    await tdb.query(`INSERT INTO users (id, email) SELECT g, 'k' || g || '@example.com' FROM generate_series(1, 30) g`);
    await converged(c);
    const count = async (where = 'true') => (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.requests WHERE ${where}`)).rows[0]!.n as number;
    expect(await count(`status = 'done'`)).toBeGreaterThan(0);
    await connector!.stop();
    // Two days pass: every request resolved so far is past the 24 h retention. One resolved 20 h ago is not.
    await tdb.query(`UPDATE wooxy_cdc.requests SET sent_at = sent_at - interval '2 days', resolved_at = resolved_at - interval '2 days'`);
    await tdb.query(`INSERT INTO wooxy_cdc.requests (request_id, mapping, list_id, op, batch_id, contact_count, status, sent_at, resolved_at, resolved_via)
      VALUES ('recent', 'users', '${LIST}', 'add', 'b', 1, 'done', now() - interval '21 hours', now() - interval '20 hours', 'poll')`);
    await start({ reconcile });
    await waitFor(async () => (await count()) === 1, { message: 'old resolved requests pruned' });
    expect((await tdb.query(`SELECT request_id FROM wooxy_cdc.requests`)).rows).toEqual([{ request_id: 'recent' }]);
  });

  it('re-sends the contacts of a request Wooxy forgot (past the 7-day retention), after warning', async () => {
    // Wooxy accepts but does not process (processing waits for processNow): the requests stay "new".
    await emulator.close();
    emulator = await createEmulator({ seed: 7, tokens: [TOKEN], lists: [{ id: LIST }], processing: { auto: false } });
    await start();
    await tdb.query(`INSERT INTO users (id, email) VALUES (1, 'r1@example.com'), (2, 'r2@example.com')`);
    await waitFor(async () => (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE state = 'inflight'`)).rows[0]!.n === 2);
    const { rows: before } = await tdb.query(`SELECT request_id FROM wooxy_cdc.requests`);
    await connector!.stop();
    // Eight days pass on both sides while the connector is down: Wooxy forgets the requests.
    emulator.advanceClock(8 * 24 * 3_600_000);
    await tdb.query(`UPDATE wooxy_cdc.requests SET sent_at = sent_at - interval '8 days'`);
    const c2 = await start();
    await waitFor(async () => (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.requests WHERE status = 'expired'`)).rows[0]!.n === before.length);
    expect((await tdb.query(`SELECT bool_and(warned) AS w FROM wooxy_cdc.requests WHERE status = 'expired'`)).rows[0]!.w).toBe(true);
    expect(await c2.metrics.expiredRequests.get()).toMatchObject({ values: [expect.objectContaining({ value: before.length })] });
    // The contacts are sent again; this time Wooxy processes them.
    await waitFor(async () => {
      emulator.processNow();
      return (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.requests WHERE status = 'new'`)).rows[0]!.n === 0 &&
        (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox`)).rows[0]!.n === 0;
    });
    expect(projectionDiff(await rows(), c2.mappers[0]!, emulator)).toEqual([]);
  });
});
