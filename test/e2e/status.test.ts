import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Status } from '../../src/admin/status.js';
import { parseConfig } from '../../src/config/loader.js';
import type { Connector } from '../../src/connector.js';
import { freePort } from '../../src/db/local-cluster.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { runCli, writeConfig } from '../helpers/child.js';
import { testConnector } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'crm';
const env = { WOOXY_ACCESS_TOKEN: 'tok' };
const FIELDS = { userId: 'id', email: 'email', firstName: 'first_name', lastName: 'last_name' };
const DDL = `CREATE TABLE users (id bigint PRIMARY KEY, email text, first_name text, last_name text)`;

/** Fields that say how long or how far, which two reads of one state need not agree on. */
const TIMING = new Set(['generatedAt', 'lag', 'lagBytes', 'retainedWalBytes', 'confirmedFlushLsn', 'restartLsn', 'durableLsn', 'ageSeconds', 'oldestPendingAgeSeconds', 'oldestUnresolvedAgeSeconds', 'secondsSinceUpdate']);
const withoutTiming = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(withoutTiming) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([k]) => !TIMING.has(k)).map(([k, x]) => [k, withoutTiming(x)])) : v;

/**
 * `status` against a connector running in-process with the emulator, through the CLI as an operator (or cron)
 * runs it: healthy, a mapping stopped, a mapping paused, removals held, orphaned entries, no connector at all.
 * Each state must be what `status --check` says, with its exit code, one line per problem naming what to do.
 */
describe('status --check, --json and /status', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector | undefined;
  let configFile: string;
  let raw: Record<string, unknown>;

  beforeAll(async () => {
    tdb = await createTestDatabase('status');
  });
  afterAll(async () => tdb.drop());
  beforeEach(async () => {
    await tdb.reset(DDL);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: LIST }], processing: { delayMs: 10 } });
    await configure();
  });
  afterEach(async () => {
    await connector?.stop();
    connector = undefined;
    await emulator.close();
  });

  /** Writes the configuration file the CLI reads and the in-process connector runs. */
  const configure = async (mapping: Record<string, unknown> = {}, postgres: Record<string, unknown> = {}) => {
    raw = {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, monitorIntervalMs: 200, ...postgres },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url, timeoutMs: 2_000 },
      capture: { flushIntervalMs: 20 },
      snapshot: { onStart: true, chunkSize: 50 },
      delivery: { idleIntervalMs: 20, pauseRetryMs: 200 },
      reconcile: { pollIntervalMs: 100 },
      http: { host: '127.0.0.1', port: await freePort() },
      log: { level: 'silent' },
      mappings: [{ table: 'public.users', contactListId: LIST, fields: FIELDS, ...mapping }],
    };
    configFile = writeConfig(raw);
  };
  const start = async () => {
    const c = (connector = testConnector(parseConfig(raw, env), { configFile }));
    await c.start();
    await waitFor(() => c.replication?.isStreaming, { message: 'streaming' });
    return c;
  };
  const stop = async () => {
    await connector?.stop();
    connector = undefined;
  };
  const count = async (sql: string) => (await tdb.query<{ n: number }>(sql)).rows[0]!.n;
  const seed = (from: number, to: number) =>
    tdb.query(`INSERT INTO users (id, email, first_name, last_name) SELECT g, 'u' || g || '@example.com', 'F' || g, 'L' || g FROM generate_series($1::int, $2::int) g`, [from, to]);
  /** Every row in the list, nothing of the mapping pending, nothing unresolved. */
  const settled = (contacts: number, mapping = 'users') =>
    waitFor(
      async () =>
        (emulator.contacts(LIST) ?? []).length === contacts &&
        (await count(`SELECT (SELECT count(*) FROM wooxy_cdc.outbox WHERE mapping = '${mapping}')::int + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS n`)) === 0,
      { timeoutMs: 30_000, message: `${contacts} contacts in the list, nothing pending` },
    );
  const check = async () => {
    const r = await runCli(['status', '--check', '--config', configFile], {});
    return { code: r.code, lines: r.stdout.trimEnd().split('\n'), stderr: r.stderr };
  };
  const json = async () => {
    const r = await runCli(['status', '--json', '--config', configFile], {});
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Status;
  };

  it('no connector: down (exit 2); running and in sync: healthy (exit 0), and /status is what status --json prints; stopped: down again; a lost slot is a gap', async () => {
    // Nothing ever ran: no schema, no slot, no publication, no leader. One line each, every one "down".
    let r = await check();
    expect(r.code, r.stderr).toBe(2);
    expect(r.lines.map((l) => l.split(':')[0])).toEqual(['DOWN SCHEMA_NOT_MIGRATED', 'DOWN SLOT_MISSING', 'DOWN PUBLICATION_MISSING', 'DOWN NO_LEADER']);
    expect(r.lines[0]).toContain(`run: wooxy-cdc migrate --config ${configFile}`);
    // A server that does not answer is down too, said in one line rather than a stack trace.
    const unreachable = writeConfig({ ...raw, postgres: { ...(raw.postgres as object), url: 'postgres://nobody@127.0.0.1:1/none' } });
    const gone = await runCli(['status', '--check', '--config', unreachable], {});
    expect(gone.code).toBe(2);
    expect(gone.stdout).toMatch(/^DOWN POSTGRES_UNREACHABLE: Postgres does not answer: .*ECONNREFUSED/);

    const c = await start();
    await seed(1, 20);
    await settled(20);
    r = await check();
    expect(r, r.stderr).toMatchObject({ code: 0, lines: [`HEALTHY: slot ${tdb.slot} streaming, 1 mapping(s) running, nothing waits for an operator`] });

    const [cli, served] = await Promise.all([json(), fetch(`http://127.0.0.1:${c.httpPort}/status`)]);
    expect(served.status).toBe(200);
    const body = (await served.json()) as Status;
    expect(body.health).toBe('healthy');
    expect(withoutTiming(body)).toEqual(withoutTiming(cli));
    expect(cli).toMatchObject({ health: 'healthy', problems: [], mappings: [{ name: 'users', state: 'running', stop: null, pause: null }], orphans: [] });
    expect(cli.lag).toEqual({ bytes: expect.any(Number), seconds: null });
    // /readyz keeps its meaning: this instance streams.
    expect(await (await fetch(`http://127.0.0.1:${c.httpPort}/readyz`)).json()).toEqual({ ready: true, role: 'leader' });

    await stop();
    r = await check();
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([expect.stringMatching(new RegExp(`^DOWN NO_LEADER: no instance leads: no session holds the leader lock of slot ${tdb.slot} — start one: wooxy-cdc run --config ${configFile}`))]);

    // The slot dropped while nothing ran: the next start streams from a new slot and reconciles, and status
    // says for a day that changes were missed.
    await tdb.query('SELECT pg_drop_replication_slot($1)', [tdb.slot]);
    expect((await check()).lines.map((l) => l.split(':')[0])).toEqual(['DOWN SLOT_MISSING', 'DOWN NO_LEADER']);
    await start();
    r = await check();
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(/^DEGRADED SOURCE_GAP: SLOT_LOST at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: replication slot .* is gone .*every mapping was reconciled — find out who dropped/)]);
    expect((await json()).lastErrors.source).toMatchObject({ code: 'SLOT_LOST', at: expect.any(String) });
  });

  it('a stopped mapping (a mapped column dropped) is degraded (exit 1), named with its reason', async () => {
    await configure({}, { publishColumns: 'all' });
    const c = await start();
    await seed(1, 10);
    await settled(10);
    await tdb.query('ALTER TABLE users DROP COLUMN last_name');
    await tdb.query(`UPDATE users SET first_name = 'Changed' WHERE id = 1`);
    await waitFor(() => c.replication?.stoppedMappings.has('users'), { message: 'the mapping stops' });
    await waitFor(async () => (await count(`SELECT count(*)::int AS n FROM wooxy_cdc.mappings WHERE stopped_code IS NOT NULL`)) === 1, { message: 'the stop recorded' });

    const [r, s] = await Promise.all([check(), json()]);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      expect.stringMatching(/^DEGRADED MAPPING_STOPPED: mapping users stopped since .* UTC at [0-9A-F]+\/[0-9A-F]+ \(MAPPING_SCHEMA_CHANGED: column public\.users\.last_name no longer exists.*\); its changes are skipped — fix the table or the mapping, then restart/),
    ]);
    expect(s.mappings).toEqual([expect.objectContaining({ name: 'users', state: 'stopped', stop: expect.objectContaining({ code: 'MAPPING_SCHEMA_CHANGED' }) })]);
    expect(s.lastErrors.source).toMatchObject({ code: 'MAPPING_SCHEMA_CHANGED', mapping: 'users' });
    // /readyz is about this instance, and it streams: it stays ready.
    expect((await fetch(`http://127.0.0.1:${c.httpPort}/readyz`)).status).toBe(200);
  });

  it('a paused mapping (Wooxy refuses the token) is degraded (exit 1) naming the cause; once it resumes, healthy again, and the pause is history with its time', async () => {
    emulator.setFaults({ authError: 'invalid' });
    const c = await start();
    await seed(1, 5);
    await waitFor(async () => (await c.metrics.deliveryPaused.get()).values.find((v) => v.labels.mapping === 'users')?.value === 1, { message: 'delivery paused' });
    await waitFor(async () => (await count(`SELECT count(*)::int AS n FROM wooxy_cdc.events WHERE code = 'DELIVERY_PAUSED'`)) === 1, { message: 'the pause recorded' });

    let r = await check();
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(/^DEGRADED DELIVERY_PAUSED: delivery of mapping users paused since .* UTC \(WOOXY_UNAUTHORIZED: .*\) — check WOOXY_ACCESS_TOKEN/)]);
    let s = await json();
    expect(s.mappings[0]).toMatchObject({ state: 'paused', pause: { cause: expect.stringMatching(/^WOOXY_UNAUTHORIZED: /) } });
    expect(s.lastErrors.delivery).toMatchObject({ mapping: 'users', at: expect.any(String) });

    emulator.setFaults({ authError: null });
    await settled(5);
    await waitFor(async () => (await count(`SELECT count(*)::int AS n FROM wooxy_cdc.events WHERE code = 'DELIVERY_RESUMED'`)) === 1, { message: 'the resume recorded' });
    r = await check();
    expect(r.code, r.lines.join('\n')).toBe(0);
    s = await json();
    expect(s.mappings[0]).toMatchObject({ state: 'running', pause: null });
    // What went wrong is still told, dated: it is not the current problem.
    expect(s.lastErrors.delivery).toMatchObject({ code: 'DELIVERY_PAUSED', message: expect.stringMatching(/^WOOXY_UNAUTHORIZED: /), ageSeconds: expect.any(Number) });
  });

  it('removals held by the guard (a TRUNCATE of 150 synced contacts) are degraded (exit 1), with the command to run', async () => {
    await start();
    await seed(1, 150);
    await settled(150);
    await tdb.query('TRUNCATE users');
    await waitFor(async () => (await count(`SELECT count(*)::int AS n FROM wooxy_cdc.removal_guard WHERE held_since IS NOT NULL`)) === 1, { message: 'the hold' });

    const r = await check();
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      expect.stringMatching(
        new RegExp(`^DEGRADED REMOVALS_HELD: 150 removal\\(s\\) of mapping users held since .* UTC \\(TRUNCATE of public\\.users\\) — run: wooxy-cdc removals list --mapping users --config ${configFile}, then approve or discard them`),
      ),
    ]);
  });

  it('a renamed mapping leaves orphaned entries: listed with the command that discards them, and orphans discard forgets them', async () => {
    // Delivery paused, so the mapping's entries wait in the outbox when the connector stops.
    emulator.setFaults({ authError: 'invalid' });
    await start();
    await seed(1, 30);
    await waitFor(async () => (await count(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE mapping = 'users' AND state = 'pending'`)) === 30, { message: '30 entries pending' });
    await waitFor(async () => (await count(`SELECT count(*)::int AS n FROM wooxy_cdc.events WHERE code = 'DELIVERY_PAUSED'`)) === 1, { message: 'the pause recorded' });
    await stop();
    // The pause ended with the term that found it: with no instance leading, that is the one problem.
    expect((await check()).lines.map((l) => l.split(':')[0])).toEqual(['DOWN NO_LEADER']);

    // The mapping renamed: "people" syncs the same table (its snapshot sends every row); "users" is an orphan.
    emulator.setFaults({ authError: null });
    await configure({ name: 'people' });
    await start();
    await settled(30, 'people');
    let [r, s] = await Promise.all([check(), json()]);
    const discard = `wooxy-cdc orphans discard --mapping users --config ${configFile}`;
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([`DEGRADED ORPHANED_ENTRIES: mapping users is not configured: 30 pending and 0 in-flight entries will never be sent, 0 dead letter(s) never settle — configure it again, or forget it (its contacts stay in Wooxy as they are): ${discard}`]);
    expect(s.orphans).toEqual([{ mapping: 'users', pending: 30, inflight: 0, contacts: 30, deadLetters: 0, runByLeader: false, command: discard }]);

    const cli = (...args: string[]) => runCli([...args, '--config', configFile], {});
    const [list, refused] = await Promise.all([cli('orphans', 'list'), cli('orphans', 'discard', '--mapping', 'people')]);
    expect(list.stdout).toBe(`users: not configured; the connector keeps 30 pending and 0 in-flight entries, 30 contact state(s), 0 dead letter(s)\n  forget it (its contacts stay in Wooxy as they are): ${discard}\n`);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--mapping people: .* configures it, so it is no orphan/);

    const done = await cli('orphans', 'discard', '--mapping', 'users');
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toBe('discarded mapping users: 30 pending and 0 in-flight entries, 30 contact state(s), 0 dead letter(s); its contacts stay in Wooxy as they are\n');
    for (const table of ['outbox', 'contact_state', 'dead_letters', 'removal_guard', 'snapshot_progress']) {
      expect(await count(`SELECT count(*)::int AS n FROM wooxy_cdc.${table} WHERE mapping = 'users'`), table).toBe(0);
    }
    expect(await count(`SELECT count(*)::int AS n FROM wooxy_cdc.mappings WHERE name = 'users'`)).toBe(0);
    expect(emulator.contacts(LIST)).toHaveLength(30);
    [r, s] = await Promise.all([check(), json()]);
    expect(r.code, r.lines.join('\n')).toBe(0);
    expect(s.orphans).toEqual([]);
    expect((await cli('orphans', 'list')).stdout).toBe(`no orphans: every mapping the connector keeps state for is configured in ${configFile}\n`);
  });

  it('with the state in another database (postgres.stateUrl): the slot is read from the source, the tables and the leader lock from the state', async () => {
    const state = await createTestDatabase('status_state');
    try {
      await configure({}, { stateUrl: state.url });
      const c = await start();
      await seed(1, 10);
      await waitFor(
        async () =>
          (emulator.contacts(LIST) ?? []).length === 10 &&
          (await state.query<{ n: number }>(`SELECT (SELECT count(*) FROM wooxy_cdc.outbox)::int + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS n`)).rows[0]!.n === 0,
        { message: '10 contacts in the list, nothing pending' },
      );
      // Read from the wrong database, this would be SCHEMA_NOT_MIGRATED and NO_LEADER (the source has no
      // connector table, and the lock is taken in the state's), or PUBLICATION_MISSING (the state has none).
      const r = await check();
      expect(r.code, r.lines.join('\n')).toBe(0);
      const [cli, served] = await Promise.all([json(), fetch(`http://127.0.0.1:${c.httpPort}/status`).then(async (x) => (await x.json()) as Status)]);
      expect(withoutTiming(served)).toEqual(withoutTiming(cli));
      expect(cli.slot).toMatchObject({ exists: true, active: true });
      await stop();
      expect((await check()).lines.map((l) => l.split(':')[0])).toEqual(['DOWN NO_LEADER']);
    } finally {
      await stop();
      await state.drop();
    }
  });
});
