import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/local-cluster.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { startConnectorProcess, waitStreaming, writeConfig, type RunningConnector } from '../helpers/child.js';
import { testConfig, testConnector, USERS_DDL } from '../helpers/connector.js';
import { adminQuery, createTestDatabase, uniqueName, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'tok-SEKRET-4f9c1e77b2';
const PASSWORD = 'pw-SEKRET-91ad03c6';
const WEBHOOK_SECRET = 'wh-SEKRET-0123456789abcdef0123';

describe('security', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let running: RunningConnector | undefined;
  const role = uniqueName('cdc_role');

  beforeAll(async () => {
    tdb = await createTestDatabase('security');
    await tdb.query(USERS_DDL);
  });
  afterEach(async () => {
    running?.proc.kill('SIGKILL');
    await running?.exited;
    running = undefined;
    await emulator?.close();
  });
  afterAll(async () => {
    await tdb.drop();
    await adminQuery(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  });

  /** The connection string of `role`, with its password in it (as users write them). */
  const roleUrl = () => {
    const u = new URL(tdb.url);
    u.username = role;
    u.password = PASSWORD;
    return u.toString();
  };

  it('runs as a least-privilege role (REPLICATION, SELECT on the table, its own schema) and never logs a secret', async () => {
    await adminQuery(`CREATE ROLE ${role} LOGIN REPLICATION PASSWORD '${PASSWORD}'`);
    await tdb.query(`GRANT SELECT ON users TO ${role}`);
    await tdb.query(`CREATE SCHEMA wooxy_cdc AUTHORIZATION ${role}`);
    // A DBA creates the publication (it needs table ownership), here without the column list the README gives
    // (as before lists existed); the role creates its own slot, and may not narrow the publication.
    await tdb.query(`CREATE PUBLICATION ${tdb.publication} FOR TABLE users`);
    emulator = await createEmulator({ tokens: [TOKEN], lists: [{ id: 'l' }], faults: { revokedTokens: [TOKEN] } });
    const port = await freePort();
    const configFile = writeConfig({
      postgres: { url: '${DATABASE_URL}', slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url, timeoutMs: 1000, maxRetries: 1 },
      delivery: { idleIntervalMs: 30, pauseRetryMs: 100 },
      reconcile: { pollIntervalMs: 100 },
      webhook: { publicUrl: `http://127.0.0.1:${port}`, secret: '${WOOXY_WEBHOOK_SECRET}' },
      http: { host: '127.0.0.1', port },
      log: { level: 'debug' },
      mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email' } }],
    });
    running = startConnectorProcess(configFile, { DATABASE_URL: roleUrl(), WOOXY_ACCESS_TOKEN: TOKEN, WOOXY_WEBHOOK_SECRET: WEBHOOK_SECRET });
    await waitStreaming(running, tdb.query, tdb.slot);
    await tdb.query(`INSERT INTO users (id, email) VALUES (1, 'a@example.com')`);
    // Wooxy answers "no matches found for access token <token>": delivery pauses, and the echo is scrubbed.
    await waitFor(() => /delivery paused/.test(running!.output()), { message: 'delivery paused on the revoked token' });
    emulator.setFaults({ revokedTokens: [] });
    await waitFor(() => (emulator.contacts('l') ?? []).length === 1, { message: 'the contact reaches Wooxy once the token works' });
    // A webhook with a wrong secret, and one with the right secret but a malformed body: refused.
    expect((await fetch(`http://127.0.0.1:${port}/webhooks/wooxy/not-the-secret`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/webhooks/wooxy/${WEBHOOK_SECRET}`, { method: 'POST', body: '{"id":' })).status).toBe(400);
    running.proc.kill('SIGTERM');
    await running.exited;
    const out = running.output();
    expect(out).toContain('"level"');
    for (const secret of [TOKEN, PASSWORD, WEBHOOK_SECRET]) expect(out, 'a secret in the logs').not.toContain(secret);
    expect(out).toMatch(/is published with columns the mappings do not read, and this role may not change the publication; its owner can run: BEGIN; ALTER PUBLICATION/);
  });

  it('names the missing privilege', async () => {
    await tdb.query(`REVOKE SELECT ON users FROM ${role}`).catch(() => undefined);
    const base = testConfig(tdb);
    const c = testConnector({ ...base, postgres: { ...base.postgres, url: roleUrl(), slot: uniqueName('slot'), autoCreate: false } });
    await expect(c.start()).rejects.toMatchObject({ message: expect.stringMatching(/no SELECT privilege on "public"."users"; run: GRANT SELECT ON "public"."users"/) });
    await c.stop();
    await adminQuery(`ALTER ROLE ${role} NOREPLICATION`);
    await tdb.query(`GRANT SELECT ON users TO ${role}`);
    const c2 = testConnector({ ...base, postgres: { ...base.postgres, url: roleUrl(), slot: uniqueName('slot'), autoCreate: false } });
    await expect(c2.start()).rejects.toMatchObject({ message: expect.stringMatching(/lacks REPLICATION; run: ALTER ROLE/) });
    await c2.stop();
  });

  it('the webhook changes no state for a wrong secret, a bad path, a malformed, oversized or unknown status; applies a genuine one once, in any shape', async () => {
    emulator = await createEmulator({ tokens: [TOKEN], lists: [{ id: 'list-1' }], processing: { auto: false } });
    const port = await freePort();
    tdb.slot = uniqueName('slot');
    const base = testConfig(tdb);
    const c = testConnector({
      ...base,
      postgres: { ...base.postgres, slot: tdb.slot, publication: tdb.publication },
      wooxy: { ...base.wooxy, accessToken: TOKEN, baseUrl: emulator.url },
      webhook: { publicUrl: `http://127.0.0.1:${port}`, secret: WEBHOOK_SECRET },
      http: { host: '127.0.0.1', port },
      reconcile: { ...base.reconcile, pollIntervalMs: 600_000 },
    });
    await c.start();
    try {
      await tdb.query(`INSERT INTO users (id, email) VALUES (2, 'b@example.com') ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email`);
      const { rows } = await waitFor(async () => {
        const r = await tdb.query<{ request_id: string }>(`SELECT request_id FROM wooxy_cdc.requests WHERE status = 'new'`);
        return r.rows.length > 0 ? r : null;
      });
      const id = rows[0]!.request_id;
      const snapshot = async () => JSON.stringify((await tdb.query(`SELECT * FROM wooxy_cdc.requests ORDER BY request_id`)).rows) + JSON.stringify((await tdb.query(`SELECT mapping, source_key, state, request_id FROM wooxy_cdc.outbox ORDER BY 1, 2, 3`)).rows);
      const before = await snapshot();
      const done = { id, source: 'API_CREATE', status: 'done', webHookUri: null, createdAt: '2026-01-01 00:00:00', updatedAt: '2026-01-01 00:00:00', results: { errors: [], success: [{ id: 'x', email: 'b@example.com', phone: null, userId: '2' }] } };
      const post = (path: string, body: string) => fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body });
      expect((await post('/webhooks/wooxy/', JSON.stringify(done))).status).toBe(404);
      expect((await post(`/webhooks/wooxy/${WEBHOOK_SECRET}x`, JSON.stringify(done))).status).toBe(404);
      expect((await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, '[1, 2')).status).toBe(400);
      expect((await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, JSON.stringify({ ...done, status: 'exploded' }))).status).toBe(400);
      // The genuine status inside a list or a request/find answer, but next to a malformed one: nothing applied.
      expect((await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, JSON.stringify([done, { ...done, id: '' }]))).status).toBe(400);
      expect((await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, JSON.stringify({ result: true, requests: { [id]: done, x: { id: 'x' } }, errors: [] }))).status).toBe(400);
      // Without the secret, the find answer is refused like any other shape.
      expect((await post(`/webhooks/wooxy/wrong`, JSON.stringify({ result: true, requests: { [id]: done }, errors: [] }))).status).toBe(404);
      expect((await post('/webhooks/wooxy/%ZZ', JSON.stringify(done))).status).toBe(400);
      expect((await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, JSON.stringify([done]).padEnd(2 * 1024 * 1024, ' '))).status).toBe(413);
      const unknown = await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, JSON.stringify({ ...done, id: 'nobody-sent-this' }));
      expect(await unknown.json()).toMatchObject({ ok: true, outcome: 'unknown' });
      expect(await snapshot()).toBe(before);
      expect((await c.metrics.webhookRejected.get()).values.map((v) => [v.labels.reason, v.value])).toEqual(
        expect.arrayContaining([['secret', 3], ['body', 4], ['path', 1], ['size', 1]]),
      );
      // The genuine status as a request/find answer, then as a list, then bare: applied once.
      const wrapped = await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, JSON.stringify({ result: true, requests: { [id]: done }, errors: [] }));
      const listed = await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, JSON.stringify([done]));
      const bare = await post(`/webhooks/wooxy/${WEBHOOK_SECRET}`, JSON.stringify(done));
      expect([await wrapped.json(), await listed.json(), await bare.json()]).toEqual([
        { ok: true, outcome: 'applied', outcomes: { [id]: 'applied' } },
        { ok: true, outcome: 'duplicate', outcomes: { [id]: 'duplicate' } },
        { ok: true, outcome: 'duplicate', outcomes: { [id]: 'duplicate' } },
      ]);
      expect((await tdb.query(`SELECT status, resolved_via FROM wooxy_cdc.requests WHERE request_id = $1`, [id])).rows[0]).toMatchObject({ status: 'done', resolved_via: 'webhook' });
    } finally {
      await c.stop();
    }
  });

  it('keeps consuming the slot while Wooxy is down: the outbox absorbs the backlog, WAL does not grow', async () => {
    emulator = await createEmulator({ tokens: [TOKEN], lists: [{ id: 'l' }], faults: { serverErrorRate: 1 } });
    tdb.slot = uniqueName('slot');
    const base = testConfig(tdb);
    const c = testConnector({
      ...base,
      postgres: { ...base.postgres, slot: tdb.slot, publication: tdb.publication, url: tdb.url },
      wooxy: { ...base.wooxy, accessToken: TOKEN, baseUrl: emulator.url, maxRetries: 0 },
    });
    await c.start();
    try {
      await waitFor(() => c.replication?.isStreaming);
      await tdb.query(`INSERT INTO users (id, email) SELECT g, 'down' || g || '@example.com' FROM generate_series(100, 2100) g`);
      const { rows } = await tdb.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      await waitFor(
        async () => (await tdb.query<{ ok: boolean }>(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [tdb.slot, rows[0]!.lsn])).rows[0]?.ok,
        { message: 'the slot confirmed past the backlog while Wooxy is down' },
      );
      const pending = (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE state = 'pending' AND source_key::int >= 100`)).rows[0]!.n;
      // What the connector's tables and stream say when the backlog is not where it should be (a rare failure under load).
      const why = async () =>
        JSON.stringify({
          outbox: (await tdb.query(`SELECT state, count(*)::int AS n FROM wooxy_cdc.outbox WHERE source_key::int >= 100 GROUP BY state`)).rows,
          states: (await tdb.query(`SELECT count(*)::int AS n, count(desired)::int AS desired, count(synced)::int AS synced FROM wooxy_cdc.contact_state WHERE source_key::int >= 100`)).rows,
          stopped: [...(c.replication?.stoppedMappings ?? new Map()).entries()],
          events: (await tdb.query(`SELECT code, mapping, message FROM wooxy_cdc.events ORDER BY id DESC LIMIT 5`)).rows,
        });
      expect(pending, pending === 2001 ? '' : await why()).toBe(2001);
      expect(emulator.contacts('l')).toEqual([]);
    } finally {
      await c.stop();
    }
  });
});
