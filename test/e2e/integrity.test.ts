import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/loader.js';
import type { Connector } from '../../src/connector.js';
import { freePort } from '../../src/db/local-cluster.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { lockHolder } from '../../src/ha/leader.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { createLogger } from '../../src/observability/logger.js';
import { startConnectorProcess, writeConfig, type RunningConnector } from '../helpers/child.js';
import { testConfig, testConnector, USERS_DDL } from '../helpers/connector.js';
import { projectionDiff } from '../helpers/converge.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'integrity-list';
const MAPPING = { table: 'public.users', contactListId: LIST, key: 'id', fields: { userId: 'id', email: 'email', phoneNumber: 'phone', firstName: 'first_name' } };
const mapper = compileMapping(parseConfig({ postgres: { url: 'postgres://x' }, wooxy: { accessToken: 'x' }, mappings: [MAPPING] }, {}).mappings[0]!);

/**
 * Delivery integrity at the edges of leadership and of Wooxy's answers: leaders overlapping after lost lock
 * sessions, calls that time out on our side but are applied late at Wooxy, and a burst of errors no page
 * documents. The emulator records what a real Wooxy would see: calls in flight (stalled ones included) and
 * contacts named by two unprocessed requests at once.
 */
describe('delivery integrity', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector | undefined;
  const children: RunningConnector[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase('integ');
  });
  afterAll(async () => tdb.drop());
  beforeEach(async () => {
    await tdb.reset(USERS_DDL);
  });
  afterEach(async () => {
    await connector?.stop();
    connector = undefined;
    for (const c of children.splice(0)) {
      c.proc.kill('SIGKILL');
      await c.exited;
    }
    await emulator.close();
  });

  const converged = (what: () => string = () => '') =>
    waitFor(
      async () => {
        const open = await tdb.query<{ n: number }>(`SELECT ((SELECT count(*) FROM wooxy_cdc.outbox) + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new'))::int AS n`);
        if (open.rows[0]!.n !== 0) return false;
        return projectionDiff((await tdb.query('SELECT * FROM users')).rows, mapper, emulator).length === 0;
      },
      { timeoutMs: 120_000, intervalMs: 200, message: `the list equals the table\n${what()}` },
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\ndiff: ${projectionDiff((await tdb.query('SELECT * FROM users')).rows, mapper, emulator).slice(0, 10).join('\n')}`);
    });

  /** A product's traffic for `ms`: sign-ups, profile edits, email and phone changes (cleared too), deletes. */
  const workload = async (ms: number, every: () => Promise<void> = async () => undefined) => {
    const until = Date.now() + ms;
    let n = 0;
    while (Date.now() < until) {
      const id = 1 + Math.floor(Math.random() * 60);
      const pick = Math.random();
      if (pick < 0.35) await tdb.query(`INSERT INTO users (id, email, phone, first_name) VALUES ($1, $2, $3, 'New') ON CONFLICT (id) DO NOTHING`, [id, `u${id}@example.com`, `+4915112345${String(id).padStart(3, '0')}`]);
      else if (pick < 0.6) await tdb.query(`UPDATE users SET first_name = $2 WHERE id = $1`, [id, `Name ${n}`]);
      else if (pick < 0.75) await tdb.query(`UPDATE users SET email = $2 WHERE id = $1`, [id, `u${id}.${n}@example.com`]);
      else if (pick < 0.88) await tdb.query(`UPDATE users SET phone = CASE WHEN phone IS NULL THEN $2 END WHERE id = $1`, [id, `+4915112345${String(id).padStart(3, '0')}`]);
      else if (pick < 0.95) await tdb.query(`DELETE FROM users WHERE id = $1`, [id]);
      // A plan change for a third of the users at once: many contacts in flight when something happens.
      else await tdb.query(`UPDATE users SET first_name = 'Bulk ' || $1 WHERE id % 3 = $2`, [n, n % 3]);
      n++;
      await every();
      await new Promise((r) => setTimeout(r, 40));
    }
    return n;
  };

  /** Every requestId the emulator issued for an accepted call, late ones included, is resolved in the requests table. */
  const unreconciled = async () => {
    const issued = emulator
      .requestLog()
      .filter((r) => (r.outcome === 'accepted' || r.verdict === 'accepted') && r.endpoint !== 'request/find' && r.requestId)
      .map((r) => r.requestId!);
    const { rows } = await tdb.query<{ request_id: string }>(`SELECT request_id FROM wooxy_cdc.requests WHERE request_id = ANY($1) AND status IN ('done', 'fail')`, [issued]);
    const resolved = new Set(rows.map((r) => r.request_id));
    return { issued: issued.length, unreconciled: issued.filter((id) => !resolved.has(id)) };
  };

  it('two instances, the leader losing its lock session again and again: no contact in two calls, every request reconciled, the list converged', async () => {
    emulator = await createEmulator({
      tokens: ['tok'],
      lists: [{ id: LIST }],
      requestLogLimit: 100_000,
      // Requests stay unprocessed a while, as at Wooxy: a second call for a contact meanwhile is an overlap.
      processing: { delayMs: 400, randomOrder: true },
      faults: { latencyMs: 300, serverErrorRate: 0.1 },
    });
    const configFile = writeConfig({
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url, timeoutMs: 3_000, timeoutGraceMs: 1_000, maxRetries: 2 },
      capture: { flushIntervalMs: 10 },
      delivery: { idleIntervalMs: 20, batchSize: 10, pauseRetryMs: 500 },
      reconcile: { pollIntervalMs: 150 },
      ha: { pollIntervalMs: 200 },
      http: { host: '127.0.0.1', port: '${HTTP_PORT}' },
      log: { level: 'info' },
      mappings: [MAPPING],
    });
    for (let i = 0; i < 2; i++) {
      const child = startConnectorProcess(configFile, { WOOXY_ACCESS_TOKEN: 'tok', HTTP_PORT: String(await freePort()) });
      children.push(child);
      await waitFor(() => /elected leader|standby: another instance/.test(child.output()), { timeoutMs: 30_000, message: `instance ${i} started\n${child.output()}` });
    }
    const admin = new pg.Client(tdb.url);
    admin.on('error', () => undefined);
    await admin.connect();
    let cuts = 0;
    let lastCut = Date.now();
    await workload(12_000, async () => {
      if (Date.now() - lastCut < 1_500) return;
      lastCut = Date.now();
      const holder = await lockHolder(admin, tdb.slot);
      if (!holder) return;
      await tdb.query('SELECT pg_terminate_backend($1)', [holder.pid]);
      cuts++;
    });
    await admin.end();
    expect(cuts).toBeGreaterThanOrEqual(5);
    const outputs = () => children.map((c, i) => `--- instance ${i} ---\n${c.output().split('\n').slice(-30).join('\n')}`).join('\n');
    await converged(outputs);
    const transitions = children.map((c) => (c.output().match(/elected leader/g) ?? []).length).reduce((a, b) => a + b, 0);
    expect(transitions, 'leadership moved at every cut').toBeGreaterThanOrEqual(cuts);
    expect(emulator.stats().overlaps, 'no contact was ever in two unprocessed calls at once').toMatchObject({ count: 0 });
    expect(await unreconciled()).toMatchObject({ unreconciled: [] });
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
  }, 240_000);

  it('calls that stall past the timeout and are applied late: never more than 10 calls at Wooxy, and the late ones never have the last word', async () => {
    emulator = await createEmulator({
      tokens: ['tok'],
      lists: [{ id: LIST }],
      requestLogLimit: 100_000,
      processing: { delayMs: 20 },
      faults: { latencyMs: 20, stallRate: 0.15, stallMs: 2_500 },
    });
    const config = testConfig(tdb, {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc' },
      // The grace outlasts the stall: by the time the contacts go again, the stalled call has been applied.
      wooxy: { accessToken: 'tok', baseUrl: emulator.url, timeoutMs: 500, timeoutGraceMs: 2_500, maxRetries: 2 },
      delivery: { idleIntervalMs: 20, batchSize: 10, pauseRetryMs: 500, pauseAfterFailures: 20 },
      reconcile: { pollIntervalMs: 100 },
      mappings: [MAPPING],
    });
    const c = (connector = testConnector(config));
    await c.start();
    await waitFor(() => c.replication?.isStreaming, { message: 'streaming' });
    await workload(10_000);
    await converged();
    const stats = emulator.stats();
    const late = emulator.requestLog().filter((r) => r.outcome === 'stalled' && r.verdict === 'accepted');
    expect(late.length, 'some calls were abandoned by the connector and applied late').toBeGreaterThan(0);
    expect(stats.peakConcurrency).toBeLessThanOrEqual(10);
    expect(stats.rejectedConcurrency).toBe(0);
    expect(stats.overlaps).toMatchObject({ count: 0 });
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
  }, 240_000);

  it('a burst of undocumented result:false answers dead-letters nothing; the list converges once it stops', async () => {
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: LIST }], processing: { delayMs: 10 }, faults: { undocumentedRate: 1 } });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        done();
      },
    });
    const config = testConfig(tdb, {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc' },
      wooxy: { accessToken: 'tok', baseUrl: emulator.url, timeoutMs: 2_000, maxRetries: 1 },
      delivery: { idleIntervalMs: 20, pauseRetryMs: 300, pauseAfterFailures: 3 },
      reconcile: { pollIntervalMs: 100 },
      mappings: [MAPPING],
    });
    const c = (connector = testConnector(config, { log: createLogger({ level: 'info', destination }) }));
    await c.start();
    await waitFor(() => c.replication?.isStreaming, { message: 'streaming' });
    await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'b' || g || '@example.com', 'Burst' FROM generate_series(1, 40) g`);
    await waitFor(() => lines.some((l) => l.includes('delivery paused after')), { message: 'the mapping pauses after failures in a row' });
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
    expect(emulator.contacts(LIST)).toEqual([]);

    emulator.setFaults({ undocumentedRate: 0 });
    await converged();
    expect((await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n).toBe(0);
    const paused = lines.map((l) => JSON.parse(l) as { level: string; msg: string; code?: string }).filter((l) => l.msg.startsWith('delivery paused after'));
    expect(paused, 'one line for the pause, not one per retry').toHaveLength(1);
    expect(paused[0]).toMatchObject({ level: 'error', code: 'WOOXY_UNDOCUMENTED' });
    expect(lines.some((l) => l.includes('delivery of mapping users resumed'))).toBe(true);
  }, 120_000);
});
