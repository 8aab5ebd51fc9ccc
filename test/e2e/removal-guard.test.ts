import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Status } from '../../src/admin/status.js';
import { parseConfig } from '../../src/config/loader.js';
import type { Connector } from '../../src/connector.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { createLogger } from '../../src/observability/logger.js';
import type { HeldRemoval, HoldSummary } from '../../src/store/removals.js';
import { runCli, writeConfig } from '../helpers/child.js';
import { testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'crm';
const env = { WOOXY_ACCESS_TOKEN: 'tok' };

interface LogLine {
  level: string;
  msg: string;
  code?: string;
  mapping?: string;
  contacts?: number;
  removals?: number;
  cause?: string;
}

/**
 * The mass-removal guard against a real Postgres and the emulator, with the operator's commands run as a
 * user would (the CLI, from source). The default limits (more than 100 removals and more than 10% of the
 * synced contacts) are in force throughout.
 */
describe('mass-removal guard', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector | undefined;
  let configFile: string;
  let raw: Record<string, unknown>;
  let lines: LogLine[];

  beforeAll(async () => {
    tdb = await createTestDatabase('guard');
  });
  afterAll(async () => tdb.drop());

  beforeEach(async () => {
    await tdb.reset(USERS_DDL);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: LIST }], processing: { delayMs: 10 } });
    raw = {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, monitorIntervalMs: 200 },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url },
      capture: { flushIntervalMs: 20 },
      snapshot: { onStart: false },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      http: { port: 0 },
      log: { level: 'info' },
      mappings: [{ table: 'public.users', contactListId: LIST, fields: { userId: 'id', email: 'email', firstName: 'first_name' } }],
    };
    configFile = writeConfig(raw);
    lines = [];
  });
  afterEach(async () => {
    await connector?.stop();
    connector = undefined;
    await emulator.close();
  });

  const start = async () => {
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine));
        done();
      },
    });
    connector = testConnector(parseConfig(raw, env), { log: createLogger({ level: 'info', destination, pretty: false }) });
    await connector.start();
    await waitFor(() => connector!.replication?.isStreaming, { message: 'streaming' });
    return connector;
  };
  const count = async (sql: string) => (await tdb.query<{ n: number }>(sql)).rows[0]!.n;
  const listed = () => emulator.contacts(LIST) ?? [];
  const userIds = () => listed().map((c) => Number(c.userId)).sort((a, b) => a - b);
  const removeCalls = () => Object.values(emulator.stats().byEndpoint['contacts/remove']).reduce((a, b) => a + (b ?? 0), 0);
  /** Every contact Wooxy holds is what the connector last confirmed: nothing pending, nothing unresolved. */
  const settled = async (contacts: number) =>
    waitFor(
      async () =>
        listed().length === contacts &&
        (await count(`SELECT (SELECT count(*) FROM wooxy_cdc.outbox)::int + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS n`)) === 0,
      { timeoutMs: 30_000, message: `${contacts} contacts in the list, nothing pending` },
    );
  const signUp = async (from: number, to: number) =>
    tdb.query(`INSERT INTO users (id, email, first_name) SELECT g, 'u' || g || '@example.com', 'F' || g FROM generate_series($1::int, $2::int) g`, [from, to]);
  const held = async () => (await connector!.metrics.removalsHeld.get()).values.find((v) => v.labels.mapping === 'users')?.value;
  const cli = async (...args: string[]) => {
    const r = await runCli([...args, '--config', configFile], env);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it('holds the removals of a TRUNCATE of 200 synced users while adds and updates go on; approve sends them', async () => {
    await start();
    await signUp(1, 200);
    await settled(200);

    await tdb.query('TRUNCATE users');
    await waitFor(async () => (await held()) === 200, { message: 'the hold in the metric' });
    // Adds and updates of the mapping go on while its removals wait.
    await signUp(1001, 1005);
    await tdb.query(`UPDATE users SET first_name = 'Edited' WHERE id = 1001`);
    await waitFor(() => listed().some((c) => c.userId === '1001' && c.firstName === 'Edited'), { message: 'the update of a new row arrives' });
    await waitFor(() => listed().length === 205, { message: 'the adds arrive' });
    expect(removeCalls()).toBe(0);
    expect(await count(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE payload IS NULL AND state = 'pending'`)).toBe(200);

    // Said once, at error level, after the TRUNCATE's own line: the count, the likely cause, the command.
    const truncateLine = lines.findIndex((l) => l.msg.startsWith('TRUNCATE of mapping users'));
    const holds = lines.filter((l) => l.code === 'REMOVALS_HELD');
    expect(lines[truncateLine]).toMatchObject({ level: 'warn', removals: 200 });
    expect(holds).toHaveLength(1);
    expect(holds[0]).toMatchObject({ level: 'error', mapping: 'users', contacts: 200, cause: 'TRUNCATE of public.users' });
    expect(holds[0]!.msg).toContain('wooxy-cdc removals list --mapping users');
    expect(lines.indexOf(holds[0]!)).toBeGreaterThan(truncateLine);

    const [list, json, text] = await Promise.all([
      cli('removals', 'list', '--mapping', 'users', '--json'),
      cli('status', '--json'),
      cli('status'),
    ]);
    const out = JSON.parse(list) as { hold: HoldSummary; removals: HeldRemoval[] };
    expect(out.hold).toMatchObject({ mapping: 'users', held: true, contacts: 200, synced: 200, cause: 'TRUNCATE of public.users' });
    expect(out.removals).toHaveLength(200);
    expect(out.removals[0]).toEqual({ key: '1', identifiers: { userId: '1', email: 'u1@example.com' }, source: 'deleted' });
    const status = JSON.parse(json) as Status;
    expect(status.removals).toEqual([
      expect.objectContaining({ mapping: 'users', held: true, heldContacts: 200, command: `wooxy-cdc removals list --mapping users --config ${configFile}`, lastDecision: null }),
    ]);
    expect(text).toMatch(/^Removals +users: 200 held since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(TRUNCATE of public\.users\); run: wooxy-cdc removals list --mapping users/m);

    expect(await cli('removals', 'approve', '--mapping', 'users')).toMatch(/^approved 200 held removal\(s\) of mapping users/);
    await settled(5);
    expect(userIds()).toEqual([1001, 1002, 1003, 1004, 1005]);
    await waitFor(async () => (await held()) === 0, { message: 'the metric back at 0' });
    expect(await cli('removals', 'list', '--mapping', 'users')).toMatch(/^users: no removals held; last decision: approved 200 removal\(s\) .* by \S+@\S+/);

    // An approval covers the removals it saw: a new mass removal is judged afresh, and held.
    await signUp(2001, 2150);
    await settled(155);
    await tdb.query('DELETE FROM users WHERE id >= 2001');
    await waitFor(async () => (await held()) === 150, { message: 'the second mass removal held' });
    expect(lines.filter((l) => l.code === 'REMOVALS_HELD').at(-1)).toMatchObject({ contacts: 150, cause: expect.stringMatching(/^150 row\(s\) deleted at the source/) });
    expect(listed()).toHaveLength(155);
  });

  it('holds the removals of a snapshot run with a filter that excludes most rows', async () => {
    await start();
    await signUp(1, 150);
    await settled(150);
    // The operator edits the filter by mistake (no row has status vip) and snapshots the mapping with it.
    const mapping = (raw.mappings as Array<Record<string, unknown>>)[0]!;
    const edited = writeConfig({ ...raw, mappings: [{ ...mapping, filter: [{ column: 'status', equals: 'vip' }] }] });
    const snapshot = await runCli(['snapshot', '--mapping', 'users', '--config', edited], env);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    expect(snapshot.stdout).toContain('removals of mapping users held: 150 contact(s)');
    await waitFor(async () => (await held()) === 150, { message: 'the running leader reports the hold' });
    const out = JSON.parse(await cli('removals', 'list', '--mapping', 'users', '--json')) as { hold: HoldSummary; removals: HeldRemoval[] };
    expect(out.hold.cause).toMatch(/^150 row\(s\) no longer match the mapping's filter/);
    expect(new Set(out.removals.map((r) => r.source))).toEqual(new Set(['filtered']));
    // Delivery runs all along: a new row arrives, no contact leaves.
    await signUp(151, 151);
    await waitFor(() => listed().length === 151, { message: 'the new row arrives' });
    expect(removeCalls()).toBe(0);
  });

  it('holds the removals a reconciliation finds after a gap the stream could not see (a TRUNCATE while the slot was lost)', async () => {
    await start();
    await signUp(1, 150);
    await settled(150);
    await connector!.stop();
    await tdb.query('SELECT pg_drop_replication_slot($1)', [tdb.slot]);
    await tdb.query('TRUNCATE users');
    await start();
    await waitFor(async () => (await held()) === 150, { timeoutMs: 30_000, message: 'the reconciliation held' });
    const hold = lines.filter((l) => l.code === 'REMOVALS_HELD');
    expect(hold).toHaveLength(1);
    expect(hold[0]!.cause).toMatch(/^a reconciliation found the rows of 150 contact\(s\) gone from public\.users/);
    expect(removeCalls()).toBe(0);
    expect(listed()).toHaveLength(150);
  });

  it('discard keeps the contacts in Wooxy and records the decision; the hold outlives a restart; a small TRUNCATE is not held', async () => {
    await start();
    await signUp(1, 150);
    await settled(150);
    await tdb.query('TRUNCATE users');
    await waitFor(async () => (await held()) === 150, { message: 'held' });

    // The hold is state in Postgres: another term of leadership finds it and keeps the removals held.
    await connector!.stop();
    await start();
    await signUp(3001, 3001);
    await waitFor(() => listed().length === 151, { message: 'delivery works after the restart' });
    await waitFor(async () => (await held()) === 150, { message: 'the new leader reports the hold' });
    expect(removeCalls()).toBe(0);
    expect(lines.filter((l) => l.code === 'REMOVALS_HELD')).toHaveLength(1);

    expect(await cli('removals', 'discard', '--mapping', 'users')).toMatch(/^discarded 150 held removal\(s\) of mapping users: the contacts stay in Wooxy/);
    const decision = (await tdb.query(`SELECT decision, contacts, decided_by, cause FROM wooxy_cdc.removal_decisions`)).rows;
    expect(decision).toEqual([{ decision: 'discard', contacts: 150, decided_by: expect.stringMatching(/^\S+@\S+$/), cause: 'TRUNCATE of public.users' }]);
    const status = JSON.parse(await cli('status', '--json')) as Status;
    expect(status.removals).toEqual([
      expect.objectContaining({ mapping: 'users', held: false, command: null, lastDecision: expect.objectContaining({ decision: 'discard', contacts: 150 }) }),
    ]);
    // The connector forgot them: no state, no entry.
    expect(await count(`SELECT count(*)::int AS n FROM wooxy_cdc.contact_state WHERE source_key::int <= 150`)).toBe(0);
    await waitFor(async () => (await held()) === 0, { message: 'the metric back at 0' });

    // Unrelated changes later bring nothing back, and a small TRUNCATE (20 of 20 synced: over 10%, not over
    // 100) is sent at once: it removes its 20, and none of the discarded contacts.
    await signUp(3002, 3020);
    await tdb.query(`UPDATE users SET first_name = 'Later' WHERE id = 3001`);
    await settled(170);
    await tdb.query('TRUNCATE users');
    await settled(150);
    expect(userIds()).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    expect(lines.filter((l) => l.code === 'REMOVALS_HELD')).toHaveLength(1);
    expect(removeCalls()).toBeGreaterThan(0);
  });
});
