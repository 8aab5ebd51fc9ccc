import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/local-cluster.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { startConnectorProcess, waitStreaming, writeConfig, type RunningConnector } from '../helpers/child.js';
import { USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two instances with one configuration: one holds the advisory lock and works, the other waits. Killing the
 * leader with SIGKILL (no chance to clean up) ends its session, which frees the lock; the standby takes over,
 * resumes the slot from its confirmed position, re-sends what the leader had in flight, and the list converges.
 */
describe('high availability', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  const children: RunningConnector[] = [];
  beforeAll(async () => {
    tdb = await createTestDatabase('ha');
    await tdb.query(USERS_DDL);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: 'l' }], processing: { delayMs: 20 } });
  });
  afterAll(async () => {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await emulator.close();
    await tdb.drop();
  });

  const scrape = async (port: number, path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, text: await res.text() };
  };
  const contactIds = () => new Set((emulator.contacts('l') ?? []).map((c) => c.userId as string));

  it('a standby takes over when the leader is killed, and the stream goes on', async () => {
    const configFile = writeConfig({
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, heartbeatIntervalMs: 0 },
      // The killed leader's calls in flight keep their contacts until timeout + grace + 5 s: short here.
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url, timeoutMs: 2_000, timeoutGraceMs: 1_000 },
      capture: { flushIntervalMs: 20 },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      ha: { pollIntervalMs: 300 },
      http: { host: '127.0.0.1', port: '${HTTP_PORT}' },
      mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email', firstName: 'first_name' } }],
    });
    const [portA, portB] = [await freePort(), await freePort()];
    const a = startConnectorProcess(configFile, { WOOXY_ACCESS_TOKEN: 'tok', HTTP_PORT: String(portA) });
    children.push(a);
    await waitStreaming(a, tdb.query, tdb.slot);
    const b = startConnectorProcess(configFile, { WOOXY_ACCESS_TOKEN: 'tok', HTTP_PORT: String(portB) });
    children.push(b);
    await waitFor(() => /standby: another instance is the leader/.test(b.output()), { timeoutMs: 30_000, message: `B is a standby\n${b.output()}` });

    // The standby is ready (healthy, not working), and says so; the leader is ready as it streams.
    expect(await scrape(portB, '/readyz')).toEqual({ status: 200, text: JSON.stringify({ ready: true, role: 'standby' }) });
    expect((await scrape(portB, '/metrics')).text).toMatch(/^wooxy_cdc_leader 0$/m);
    expect(await scrape(portA, '/readyz')).toEqual({ status: 200, text: JSON.stringify({ ready: true, role: 'leader' }) });
    expect((await scrape(portA, '/metrics')).text).toMatch(/^wooxy_cdc_leader 1$/m);

    await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'before' FROM generate_series(1, 300) g`);
    await waitFor(() => contactIds().size >= 100, { message: 'the leader delivers' });
    a.proc.kill('SIGKILL');
    expect(await a.exited).toMatchObject({ signal: 'SIGKILL' });

    // Written after the leader died: only the new leader can carry them.
    await tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'after' FROM generate_series(301, 400) g`);
    await tdb.query(`UPDATE users SET first_name = 'after' WHERE id <= 50`);
    await tdb.query(`DELETE FROM users WHERE id BETWEEN 51 AND 60`);

    await waitFor(() => /elected leader/.test(b.output()), { timeoutMs: 30_000, message: `B takes over\n${b.output()}` });
    await waitFor(
      async () => {
        const list = emulator.contacts('l') ?? [];
        const { rows } = await tdb.query<{ id: string; first_name: string }>('SELECT id::text, first_name FROM users');
        const want = new Map(rows.map((r) => [r.id, r.first_name]));
        return list.length === want.size && list.every((c) => want.get(c.userId as string) === c.firstName);
      },
      { timeoutMs: 60_000, intervalMs: 100, message: `the list converges under the new leader\n${b.output()}` },
    );
    expect([...contactIds()].filter((id) => Number(id) > 300)).toHaveLength(100);
    await waitFor(
      async () => (await tdb.query<{ n: number }>(`SELECT ((SELECT count(*) FROM wooxy_cdc.outbox) + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new'))::int AS n`)).rows[0]?.n === 0,
      { message: 'outbox drained and every request resolved' },
    );
    expect(await scrape(portB, '/readyz')).toEqual({ status: 200, text: JSON.stringify({ ready: true, role: 'leader' }) });
    expect((await scrape(portB, '/metrics')).text).toMatch(/^wooxy_cdc_leader 1$/m);

    b.proc.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
  });
});
