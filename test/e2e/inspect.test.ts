import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { InspectReport } from '../../src/admin/inspect.js';
import { parseConfig } from '../../src/config/loader.js';
import type { Connector } from '../../src/connector.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { runCli, writeConfig } from '../helpers/child.js';
import { testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'crm';
const TOKEN = 'tok';

/**
 * `wooxy-cdc inspect` against a running connector and the emulator, run as the CLI without the access token.
 * The story of user 1: added, updated, deleted (removed), added again while Wooxy already held it again (an
 * ERR_CONTACT_EXISTS fallback to update), then given user 2's email (dead-lettered, IDENTIFIER_TAKEN). Every
 * step must show with its requestId, the state gone after the delete included: the history outlives it.
 */
describe('inspect', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector | undefined;
  let configFile: string;

  beforeAll(async () => {
    tdb = await createTestDatabase('inspect');
  });
  afterAll(async () => tdb.drop());
  beforeEach(async () => {
    await tdb.reset(USERS_DDL);
  });
  afterEach(async () => {
    await connector?.stop();
    connector = undefined;
    await emulator.close();
  });

  const start = async (processing: Record<string, unknown> = { delayMs: 10 }) => {
    emulator = await createEmulator({ seed: 3, tokens: [TOKEN], lists: [{ id: LIST }], processing });
    const raw = {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url, timeoutMs: 2000 },
      capture: { flushIntervalMs: 20 },
      snapshot: { onStart: false },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 100 },
      http: { port: 0 },
      log: { level: 'silent' },
      mappings: [
        {
          table: 'public.users',
          contactListId: LIST,
          fields: { userId: 'id', email: 'email', phoneNumber: 'phone', firstName: 'first_name' },
          filter: [{ column: 'status', notEquals: 'banned' }],
        },
      ],
    };
    configFile = writeConfig(raw);
    connector = testConnector(parseConfig(raw, { WOOXY_ACCESS_TOKEN: TOKEN }));
    await connector.start();
    await waitFor(() => connector!.replication?.isStreaming, { message: 'streaming' });
  };

  /** Nothing queued, in flight or unresolved. */
  const settled = (message: string) =>
    waitFor(
      async () =>
        (await tdb.query(`SELECT (SELECT count(*) FROM wooxy_cdc.outbox)::int + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS n`)).rows[0]!.n === 0,
      { message, timeoutMs: 30_000 },
    );
  const inList = (userId: string) => (emulator.contacts(LIST) ?? []).find((c) => c.userId === userId);
  // Without WOOXY_ACCESS_TOKEN: inspect never calls Wooxy.
  const inspectCli = (...args: string[]) => runCli(['inspect', '--config', configFile, '--mapping', 'users', ...args], {});

  it('shows every step of a contact with its requestId: add, update, remove, an ERR_CONTACT_EXISTS fallback, a dead letter', async () => {
    await start();
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (1, 'one@example.com', 'One'), (2, 'two@example.com', 'Two'), (3, 'three@example.com', 'Three')`);
    await waitFor(() => inList('1') && inList('2') && inList('3'), { message: 'added' });
    await settled('adds resolved');
    await tdb.query(`UPDATE users SET first_name = 'Uno' WHERE id = 1`);
    await waitFor(() => inList('1')?.firstName === 'Uno', { message: 'updated' });
    await tdb.query(`DELETE FROM users WHERE id = 1`);
    await waitFor(() => !inList('1'), { message: 'removed' });
    await settled('removal resolved');
    // Someone imports user 1 into the list by hand: the connector's next add of it is answered "exists".
    const imported = await connector!.client.add({ contactListId: LIST, contacts: [{ userId: '1', email: 'one@example.com' }] });
    await waitFor(() => emulator.request(imported.requestId)?.status === 'done');
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (1, 'one@example.com', 'Ein')`);
    await waitFor(() => inList('1')?.firstName === 'Ein', { message: 'the fallback update arrived' });
    await settled('fallback resolved');
    // Two rows now want two@example.com: Wooxy refuses user 1's update, and user 2 still wants it.
    await tdb.query(`UPDATE users SET email = 'two@example.com' WHERE id = 1`);
    await waitFor(async () => (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters WHERE source_key = '1'`)).rows[0]!.n === 1, { message: 'dead-lettered' });
    await tdb.query(`UPDATE users SET status = 'banned' WHERE id = 3`);
    await waitFor(() => !inList('3'), { message: 'user 3 filtered out and removed' });
    await settled('all resolved');

    const json = await inspectCli('--key', '1', '--json');
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as InspectReport;
    expect(report).toMatchObject({ mapping: 'users', listId: LIST, by: { key: '1' }, historyKeepDays: 30, migrated: true });
    const [c] = report.contacts;
    expect(c).toMatchObject({
      key: '1',
      row: { found: true, table: 'public.users', keyColumn: 'id' },
      filter: { passes: true, unmet: [] },
      projection: { ok: true, contact: { userId: '1', email: 'two@example.com', firstName: 'Ein' } },
      wooxy: { holds: { userId: '1', email: 'one@example.com', firstName: 'Ein' }, differences: [{ field: 'email', from: 'one@example.com', to: 'two@example.com' }] },
      pending: null,
      inflight: null,
      deadLetter: { code: 'IDENTIFIER_TAKEN', op: 'update', message: expect.stringContaining('email two@example.com is held by users/2') },
    });
    expect(c!.summary).toMatch(/^in the list; Wooxy holds another version \(email\); dead letter IDENTIFIER_TAKEN: /);
    // Newest first: the dead letter, the fallback's update, the add Wooxy answered "exists", the remove, the update, the first add.
    const steps = c!.history!.map((h) => [h.op, h.outcome, h.code, h.hint]);
    expect(steps).toEqual([
      ['update', 'dead', 'IDENTIFIER_TAKEN', null],
      ['update', 'success', null, null],
      ['add', 'retry', 'ERR_CONTACT_EXISTS', 'update'],
      ['remove', 'success', null, null],
      ['update', 'success', null, null],
      ['add', 'success', null, null],
    ]);
    const ids = c!.history!.map((h) => h.requestId!);
    expect(new Set(ids).size).toBe(6);
    // Each is a request Wooxy made, whose result names user 1.
    for (const id of ids) expect(JSON.stringify(emulator.request(id)?.results)).toContain('"userId":"1"');
    expect(c!.history![0]!.humanError).toMatch(/held by users\/2 \(Wooxy: ERR_CONTACT_DUPLICATION_ATTEMPT: /);
    expect(c!.history![2]!.humanError).toMatch(/already exists/);

    const text = await inspectCli('--key', '1');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^users\/1: in the list; Wooxy holds another version \(email\); dead letter IDENTIFIER_TAKEN/);
    expect(text.stdout).toMatch(/^Differences +email "one@example\.com" → "two@example\.com"$/m);
    expect(text.stdout).toMatch(/^Dead letter +IDENTIFIER_TAKEN \(update, /m);
    expect(text.stdout).toMatch(/^History +6 request\(s\), newest first \(kept 30 days\)$/m);
    for (const id of ids) expect(text.stdout).toContain(id);
    expect(text.stdout).toMatch(new RegExp(`${ids[2]}  add +userId 1, email one@example\\.com +ERR_CONTACT_EXISTS: .* → sent again as update$`, 'm'));
  });

  it('finds contacts by email (any case) or phone, shows a filtered-out row, and says when nothing is known', async () => {
    await start();
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (1, 'ada@example.com', '+15555550001'), (2, 'bob@example.com', NULL)`);
    await waitFor(() => inList('1') && inList('2'), { message: 'added' });
    await settled('adds resolved');
    await tdb.query(`UPDATE users SET status = 'banned' WHERE id = 2`);
    await waitFor(() => !inList('2'), { message: 'user 2 removed' });
    await settled('removal resolved');

    const [byEmail, byPhone, banned, unknown] = await Promise.all([
      inspectCli('--email', 'ADA@Example.com', '--json'),
      inspectCli('--phone', '+15555550001', '--json'),
      inspectCli('--email', 'bob@example.com'),
      inspectCli('--key', '42'),
    ]);
    expect(byEmail.code, byEmail.stderr).toBe(0);
    expect((JSON.parse(byEmail.stdout) as InspectReport).contacts.map((c) => c.key)).toEqual(['1']);
    expect((JSON.parse(byPhone.stdout) as InspectReport).contacts.map((c) => [c.key, c.summary])).toEqual([['1', 'in the list; in sync']]);
    // A row the filter keeps out has no contact payload stored, only its columns: found through them.
    expect(banned.code, banned.stderr).toBe(0);
    expect(banned.stdout).toMatch(/^users\/2: not in the list; as it should be: filtered out \(status notEquals "banned"\)$/m);
    expect(banned.stdout).toMatch(/^Filter +filtered out: \{"column":"status","notEquals":"banned"\}$/m);
    expect(banned.stdout).toMatch(/^ +\S+ \S+ +[\w-]+ +remove +userId 2 +success$/m);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/^users\/42: not in the list; as it should be: no row of public.users has id 42$/m);

    const none = await inspectCli('--email', 'nobody@example.com');
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('users: no contact with email nobody@example.com\n');
    const usage = await inspectCli('--key', '1', '--email', 'ada@example.com');
    expect(usage.code).toBe(2);
  });

  it('shows the request in flight and the change waiting behind it', async () => {
    // Wooxy accepts but does not process until told to: the request stays in flight.
    await start({ auto: false });
    await tdb.query(`INSERT INTO users (id, email) VALUES (1, 'ada@example.com')`);
    await waitFor(async () => (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE state = 'inflight'`)).rows[0]!.n === 1, { message: 'in flight' });
    await tdb.query(`UPDATE users SET first_name = 'Ada' WHERE id = 1`);
    await waitFor(async () => (await tdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE state = 'pending'`)).rows[0]!.n === 1, { message: 'pending' });
    const { rows } = await tdb.query<{ request_id: string }>(`SELECT request_id FROM wooxy_cdc.outbox WHERE state = 'inflight'`);
    const r = await inspectCli('--key', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    const [c] = (JSON.parse(r.stdout) as InspectReport).contacts;
    expect(c).toMatchObject({
      inflight: { requestId: rows[0]!.request_id, sentOp: 'add', request: { status: 'new' } },
      pending: { payload: { userId: '1', email: 'ada@example.com', firstName: 'Ada' } },
      wooxy: { holds: null },
      history: [],
    });
    expect(c!.summary).toBe(`not in the list; but should be; request ${rows[0]!.request_id} (add) is in flight since ${c!.inflight!.sentAt}; a change waits to be sent`);
    emulator.processNow();
  });
});
