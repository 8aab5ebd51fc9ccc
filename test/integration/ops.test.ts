import { Writable } from 'node:stream';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { Connector } from '../../src/connector.js';
import { freePort } from '../../src/db/local-cluster.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { lockHolder } from '../../src/ha/leader.js';
import { createLogger } from '../../src/observability/logger.js';
import { testConfig, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/** A connector whose log lines are kept for assertions. */
function connectorWithLog(config: Config): { connector: Connector; lines: () => Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const log = createLogger({ level: 'info', destination });
  return { connector: new Connector({ config, log }), lines: () => lines };
}

describe('operations: metrics, health, WAL safety, leadership', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  /** A config with a new slot and publication; `postgres` settings are added to the test's own. */
  const fresh = ({ postgres = {}, ...overrides }: { postgres?: Record<string, unknown>; [k: string]: unknown } = {}) => {
    tdb.slot = uniqueName('slot');
    tdb.publication = uniqueName('pub');
    return testConfig(tdb, {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc', ...postgres },
      wooxy: { accessToken: 'tok', baseUrl: emulator.url },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      ...overrides,
    });
  };
  const slotPosition = async (slot: string) =>
    (await tdb.query<{ confirmed: string }>('SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0]?.confirmed;

  beforeAll(async () => {
    tdb = await createTestDatabase('ops');
    await tdb.query(USERS_DDL);
    await tdb.query('CREATE TABLE audit_log (id bigserial PRIMARY KEY, note text)');
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: 'list-1' }], processing: { delayMs: 20 } });
  });
  afterAll(async () => {
    await emulator.close();
    await tdb.drop();
  });

  it('serves /healthz, /readyz and /metrics with every documented metric, and warns when the slot retains too much WAL', async () => {
    const port = await freePort();
    const config = fresh({
      http: { host: '127.0.0.1', port },
      postgres: { walWarnBytes: 1, monitorIntervalMs: 100 },
    });
    const { connector, lines } = connectorWithLog(config);
    await connector.start();
    try {
      const get = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        return { status: res.status, body: await res.text() };
      };
      expect(await get('/healthz')).toEqual({ status: 200, body: '{"status":"ok"}' });
      await waitFor(async () => (await get('/readyz')).status === 200, { message: 'ready as the streaming leader' });
      expect(JSON.parse((await get('/readyz')).body)).toEqual({ ready: true, role: 'leader' });

      await tdb.query(`INSERT INTO users (id, email, phone) SELECT g, 'm' || g || '@example.com', NULL FROM generate_series(1, 30) g`);
      await tdb.query(`INSERT INTO users (id, email, phone) VALUES (99, 'bad@example.com', '12345')`);
      await waitFor(() => emulator.contacts('list-1')?.length === 30, { message: 'contacts delivered' });

      const metrics = await waitFor(
        async () => {
          const { body } = await get('/metrics');
          return /^wooxy_cdc_slot_retained_wal_warning 1$/m.test(body) && /^wooxy_cdc_dead_letter_contacts\{mapping="users",code="ROW_INVALID"\} 1$/m.test(body) ? body : null;
        },
        { message: 'the monitor sampled the slot and the dead letters' },
      );
      const names = [
        'wooxy_cdc_replication_lag_bytes',
        'wooxy_cdc_slot_retained_wal_bytes',
        'wooxy_cdc_slot_retained_wal_warning',
        'wooxy_cdc_changes_total',
        'wooxy_cdc_outbox_depth',
        'wooxy_cdc_api_requests_in_flight',
        'wooxy_cdc_api_requests_queued',
        'wooxy_cdc_requests_total',
        'wooxy_cdc_request_statuses_total',
        'wooxy_cdc_unresolved_requests',
        'wooxy_cdc_oldest_unresolved_request_age_seconds',
        'wooxy_cdc_dead_letters_total',
        'wooxy_cdc_dead_letter_contacts',
        'wooxy_cdc_api_latency_seconds',
        'wooxy_cdc_api_errors_total',
        'wooxy_cdc_leader',
        'wooxy_cdc_replication_streaming',
        'wooxy_cdc_heartbeats_total',
      ];
      for (const name of names) expect(metrics, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
      expect(metrics).toMatch(/^wooxy_cdc_leader 1$/m);
      expect(metrics).toMatch(/^wooxy_cdc_replication_streaming 1$/m);
      expect(metrics).toMatch(/^wooxy_cdc_changes_total\{mapping="users",kind="insert"\} 31$/m);
      expect(metrics).toMatch(/^wooxy_cdc_outbox_depth\{state="pending"\} \d+$/m);
      expect(metrics).toMatch(/^wooxy_cdc_api_latency_seconds_bucket\{le="[^"]+",endpoint="contacts\/add"\} \d+$/m);
      expect(metrics).toMatch(/^wooxy_cdc_api_requests_in_flight \d+$/m);
      expect(Number(/^wooxy_cdc_slot_retained_wal_bytes (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(1);

      const warning = lines().find((l) => /replication slot retains .* of WAL/.test(String(l.msg)));
      expect(warning).toMatchObject({ level: 'warn', slot: tdb.slot, thresholdBytes: 1 });
      expect(JSON.stringify(lines())).not.toContain(tdb.url);
    } finally {
      await connector.stop();
    }
  });

  it('advances an idle slot with heartbeats while unrelated tables generate WAL', async () => {
    const config = fresh({
      postgres: { heartbeatIntervalMs: 200 },
    });
    const { connector } = connectorWithLog(config);
    await connector.start();
    try {
      await waitFor(() => connector.replication?.isStreaming, { message: 'streaming' });
      const before = await slotPosition(tdb.slot);
      // Nothing of the publication changes; only an unpublished table does, so pgoutput sends nothing for it.
      for (let i = 0; i < 20; i++) await tdb.query(`INSERT INTO audit_log (note) SELECT repeat('x', 200) FROM generate_series(1, 100)`);
      const { rows } = await tdb.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      const target = rows[0]!.lsn;
      await waitFor(
        async () => (await tdb.query<{ ok: boolean }>('SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1', [tdb.slot, target])).rows[0]?.ok,
        { message: `slot confirmed past ${target} (it was at ${before})` },
      );
      expect(await connector.metrics.heartbeats.get()).toMatchObject({ values: [expect.objectContaining({ labels: { outcome: 'written' } })] });
    } finally {
      await connector.stop();
    }
  });

  it('a leader whose lock connection dies stops working; the standby takes over, and the old leader waits', async () => {
    const config = fresh({ ha: { pollIntervalMs: 200 }, postgres: { heartbeatIntervalMs: 0 } });
    const a = connectorWithLog(config);
    const b = connectorWithLog(config);
    await a.connector.start();
    await b.connector.start();
    try {
      expect([a.connector.role, b.connector.role]).toEqual(['leader', 'standby']);
      expect(b.connector.replication).toBeNull();
      await waitFor(() => a.connector.replication?.isStreaming, { message: 'A streams' });

      // The database ends A's lock session (as a failover of the network or an administrator would). Only the
      // leader lock's holder: other advisory locks (a snapshot's, a writer's turn) may be held at this moment.
      const holder = await lockHolder({ query: (text: string, values?: unknown[]) => tdb.query(text, values) } as Pick<pg.ClientBase, 'query'>, config.postgres.slot);
      const { rows } = await tdb.query<{ n: number }>(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM (SELECT $1::int AS pid) h WHERE pid IS NOT NULL`,
        [holder?.pid ?? null],
      );
      expect(rows[0]?.n).toBe(1);
      await waitFor(() => b.connector.role === 'leader' && b.connector.replication?.isStreaming, { message: 'B leads and streams' });
      await waitFor(() => a.connector.role === 'standby', { message: 'A became a standby' });
      expect(a.connector.replication).toBeNull();
      expect(a.lines().find((l) => l.msg === 'leadership lost: stopping work at once')).toMatchObject({ level: 'error', reason: expect.stringMatching(/lock connection/) });

      await tdb.query(`INSERT INTO users (id, email) VALUES (500, 'after-failover@example.com')`);
      await waitFor(() => emulator.contacts('list-1')?.some((c) => c.userId === '500'), { message: 'the new leader delivers' });
    } finally {
      await Promise.all([a.connector.stop(), b.connector.stop()]);
    }
  });
});
