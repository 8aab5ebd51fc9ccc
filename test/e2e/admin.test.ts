import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Status } from '../../src/admin/status.js';
import type { DeadLetter } from '../../src/store/dead-letters.js';
import { parseConfig } from '../../src/config/loader.js';
import type { Connector } from '../../src/connector.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { runCli, writeConfig } from '../helpers/child.js';
import { testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The operator's commands against a running connector: `status` (terminal and --json) and `dead-letters`
 * list, retry and discard. The story: the mapping sends a list variable the Wooxy list types as a date, but
 * the rows hold plain text, so Wooxy rejects those contacts one by one (dead letters); the variable is
 * retyped as a string, the operator retries them, and they arrive. One row is invalid at the source and is
 * discarded. (A variable missing from the list altogether pauses delivery instead: see delivery.test.ts.)
 */
describe('status and dead-letters commands', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector;
  let configFile: string;
  const env = { WOOXY_ACCESS_TOKEN: 'tok' };

  beforeAll(async () => {
    tdb = await createTestDatabase('admin');
    await tdb.query(USERS_DDL);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: 'crm', variables: [{ name: 'plan', type: 'date' }] }], processing: { delayMs: 20 } });
    const raw = {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url },
      capture: { flushIntervalMs: 20 },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      http: { port: 0 },
      log: { level: 'silent' },
      mappings: [{ table: 'public.users', contactListId: 'crm', fields: { userId: 'id', email: 'email', phoneNumber: 'phone' }, variables: { plan: 'plan' } }],
    };
    configFile = writeConfig(raw);
    connector = testConnector(parseConfig(raw, env));
    await connector.start();
    await waitFor(() => connector.replication?.isStreaming, { message: 'streaming' });
    await tdb.query(`INSERT INTO users (id, email, plan) SELECT g, 'p' || g || '@example.com', 'pro' FROM generate_series(1, 5) g`);
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (99, 'bad-phone@example.com', '555-0100')`);
    await waitFor(async () => (await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]?.n === 6, {
      message: 'five contacts rejected by Wooxy, one invalid row',
    });
  });
  afterAll(async () => {
    await connector.stop();
    await emulator.close();
    await tdb.drop();
  });

  it('status reports slot, leader, outbox, requests, dead letters, snapshot and the last error', async () => {
    // The snapshot on start has run by now (a few rows); its progress row is what status reports.
    await waitFor(async () => (await tdb.query(`SELECT finished_at FROM wooxy_cdc.snapshot_progress WHERE mapping = 'users'`)).rows[0]?.finished_at as unknown);
    // Without the access token: status never calls Wooxy, so an operator's shell need not hold it.
    const [json, text] = await Promise.all([runCli(['status', '--config', configFile, '--json'], {}), runCli(['status', '--config', configFile], env)]);
    expect(json.code, json.stderr).toBe(0);
    const status = JSON.parse(json.stdout) as Status;
    expect(status.slot).toMatchObject({ name: tdb.slot, exists: true, active: true, durableLsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) });
    expect(status.slot.lagBytes).toBeGreaterThanOrEqual(0);
    expect(status.slot.retainedWalBytes).toBeGreaterThan(0);
    expect(status.leader).toMatchObject({ pid: expect.any(Number), applicationName: expect.stringMatching(new RegExp(`^wooxy-cdc .* pid ${process.pid}$`)) });
    expect(status.schema).toEqual({ name: 'wooxy_cdc', migrated: true, pending: [] });
    expect(status.outbox).toMatchObject({ pending: 0, inflight: 0 });
    expect(status.requests).toMatchObject({ unresolved: 0 });
    expect(status.deadLetters).toEqual({ count: 6, byCode: { WOOXY_VALIDATION: 5, ROW_INVALID: 1 }, byMapping: { users: 6 } });
    expect(status.snapshot).toEqual([
      expect.objectContaining({ mapping: 'users', finished: true, rowsDone: expect.any(Number), chunksDone: expect.any(Number), finishedAt: expect.any(String) }),
    ]);
    // Each stage's latest error with its time: here only dead letters, and nothing of the source's.
    expect(status.lastErrors.deadLetters).toMatchObject({ code: expect.stringMatching(/^(WOOXY_VALIDATION|ROW_INVALID)$/), mapping: 'users', at: expect.any(String), ageSeconds: expect.any(Number) });
    expect(status.lastErrors.source).toBeNull();
    // Contacts not in sync: degraded, with the command that lists them.
    expect(status.health).toBe('degraded');
    expect(status.problems).toEqual([expect.objectContaining({ severity: 'degraded', code: 'DEAD_LETTERS', mapping: 'users', remedy: expect.stringContaining(`wooxy-cdc dead-letters list --mapping users --config ${configFile}`) })]);
    // One naming style for scripts: every key camelCase, except the data used as keys (codes, mapping names).
    const keys = (v: unknown, path = ''): string[] =>
      Array.isArray(v)
        ? v.flatMap((x) => keys(x, `${path}[]`))
        : v && typeof v === 'object'
          ? Object.entries(v).flatMap(([k, x]) => [...(/\.by(Code|Mapping)$/.test(path) ? [] : [`${path}.${k}`]), ...keys(x, `${path}.${k}`)])
          : [];
    expect(keys(status).filter((k) => !/^[a-z][a-zA-Z0-9]*$/.test(k.split('.').pop()!))).toEqual([]);

    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^Slot +${tdb.slot}: active`, 'm'));
    expect(text.stdout).toMatch(/^Leader +wooxy-cdc .* backend pid \d+/m);
    expect(text.stdout).toMatch(/^Dead letters +6 \((WOOXY_VALIDATION 5, ROW_INVALID 1|ROW_INVALID 1, WOOXY_VALIDATION 5)\)/m);
    const rows = status.snapshot[0]!.rowsDone.toLocaleString('en-US');
    expect(text.stdout).toMatch(new RegExp(`^Snapshot +users: finished \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC, ${rows} rows in \\d+ chunks? \\(took \\d+ s\\)$`, 'm'));
  });

  it('dead-letters list, retry and discard', async () => {
    const [list, unscoped] = await Promise.all([
      runCli(['dead-letters', 'list', '--config', configFile, '--json'], env),
      runCli(['dead-letters', 'retry', '--config', configFile], env),
    ]);
    expect(list.code, list.stderr).toBe(0);
    const dead = JSON.parse(list.stdout) as DeadLetter[];
    expect(dead).toHaveLength(6);
    expect(dead.find((d) => d.key === '3')).toMatchObject({ mapping: 'users', op: 'add', code: 'WOOXY_VALIDATION', message: expect.stringContaining('Variable plan type is date, but value is not valid date. Value pro') });
    expect(dead.find((d) => d.key === '99')).toMatchObject({ code: 'ROW_INVALID', message: expect.stringContaining('555-0100') });

    // retry and discard refuse to act on every dead letter unless told so.
    expect(unscoped.code).toBe(2);
    expect(unscoped.stderr).toMatch(/--all/);

    // The variable is a string now: the rejected contacts can go.
    emulator.defineList({ id: 'crm', variables: [{ name: 'plan', type: 'string' }] });
    const retry = await runCli(['dead-letters', 'retry', '--config', configFile, '--code', 'WOOXY_VALIDATION'], env);
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stdout).toMatch(/^retried 5 dead letter\(s\): 5 contact\(s\) queued$/m);
    await waitFor(() => emulator.contacts('crm')?.length === 5, { message: 'retried contacts delivered' });
    expect(emulator.contacts('crm')?.find((c) => c.userId === '3')).toMatchObject({ email: 'p3@example.com', variables: { plan: 'pro' } });

    const discard = await runCli(['dead-letters', 'discard', '--config', configFile, '--key', '99'], env);
    expect(discard.stdout).toMatch(/^discarded 1 dead letter\(s\)$/m);
    const text = await runCli(['dead-letters', 'list', '--config', configFile], env);
    expect(text.stdout).toBe('no dead letters\n');
    expect(emulator.contacts('crm')).toHaveLength(5);
  });
});
