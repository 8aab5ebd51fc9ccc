import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/loader.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import type { PreviewOutcome } from '../../src/snapshot/preview.js';
import { runCli, writeConfig } from '../helpers/child.js';
import { testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'crm';
const TOKEN = 'tok';

/**
 * `plan`, `snapshot --dry-run` and `resync --dry-run` as the CLI, without the access token: the counts they
 * report, and that they write nothing — before the connector ever ran (no schema, slot or publication is
 * created) and after (outbox, dead letters, snapshot progress, mapping records and the slot unchanged).
 * The table: users 1–28 valid, 29 kept out by the filter, 30 with a phone number Wooxy refuses.
 */
describe('plan and dry runs', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  const mapping = (over: Record<string, unknown> = {}) => ({
    table: 'public.users',
    contactListId: LIST,
    fields: { userId: 'id', email: 'email', phoneNumber: 'phone', firstName: 'first_name' },
    filter: [{ column: 'status', notEquals: 'banned' }],
    ...over,
  });
  const raw = (m: Record<string, unknown>) => ({
    postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
    wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url, timeoutMs: 2000 },
    capture: { flushIntervalMs: 20 },
    snapshot: { chunkSize: 7 },
    delivery: { idleIntervalMs: 20 },
    reconcile: { pollIntervalMs: 100 },
    http: { port: 0 },
    log: { level: 'silent' },
    mappings: [m],
  });
  // The token is never needed: nothing here calls Wooxy.
  const cli = async (...args: string[]) => runCli(args, {});
  const json = (r: { code: number | null; stdout: string; stderr: string }) => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as PreviewOutcome[];
  };
  const counts = (o: PreviewOutcome[]) => o[0]!.counts;

  beforeAll(async () => {
    tdb = await createTestDatabase('plan');
    emulator = await createEmulator({ seed: 5, tokens: [TOKEN], lists: [{ id: LIST }, { id: 'other' }], processing: { delayMs: 5 } });
    await tdb.query(USERS_DDL);
    await tdb.query(`INSERT INTO users (id, email, first_name, last_name) SELECT g, 'u' || g || '@example.com', 'F' || g, 'L' || g FROM generate_series(1, 30) g`);
    await tdb.query(`UPDATE users SET status = 'banned' WHERE id = 29`);
    await tdb.query(`UPDATE users SET phone = 'not-a-phone' WHERE id = 30`);
  });
  afterAll(async () => {
    await emulator.close();
    await tdb.drop();
  });

  it('previews a first snapshot before the connector ever ran, creating nothing', async () => {
    const file = writeConfig(raw(mapping()));
    const out = json(await cli('snapshot', '--config', file, '--dry-run', '--json'));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ mapping: 'users', mode: 'snapshot', rows: 30, migrated: false, finished: true, queued: 28 });
    expect(counts(out)).toEqual({ add: 28, update: 0, remove: 0, unchanged: 1, 'dead-letter': 1 });
    expect(out[0]!.examples.add[0]).toEqual({ key: '1', detail: 'userId 1, email u1@example.com' });
    expect(out[0]!.examples['dead-letter']).toEqual([{ key: '30', detail: expect.stringContaining('not-a-phone') }]);
    // No schema, slot or publication: what `snapshot` would create first.
    const created = await tdb.query<{ schema: number; slot: number; publication: number }>(
      `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'wooxy_cdc')::int AS schema,
              (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)::int AS slot,
              (SELECT count(*) FROM pg_publication WHERE pubname = $2)::int AS publication`,
      [tdb.slot, tdb.publication],
    );
    expect(created.rows[0]).toEqual({ schema: 0, slot: 0, publication: 0 });
  });

  it('plans a mapping change against what Wooxy holds, and neither plan nor the dry runs queue or change anything', async () => {
    const base = raw(mapping());
    const connector = testConnector(parseConfig(base, { WOOXY_ACCESS_TOKEN: TOKEN }));
    await connector.start();
    try {
      await waitFor(() => emulator.contacts(LIST)?.length === 28, { message: 'the first snapshot delivered', timeoutMs: 30_000 });
      await waitFor(
        async () =>
          (await tdb.query(`SELECT (SELECT count(*) FROM wooxy_cdc.outbox)::int + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS n`)).rows[0]!.n === 0,
        { message: 'settled' },
      );
    } finally {
      await connector.stop();
    }
    // While nothing streams: user 5 is deleted, user 6 renamed. The connector does not know yet.
    await tdb.query(`DELETE FROM users WHERE id = 5`);
    await tdb.query(`UPDATE users SET first_name = 'Six' WHERE id = 6`);
    const snapshotOf = async () =>
      (
        await tdb.query(`SELECT
          (SELECT coalesce(jsonb_agg(o ORDER BY o.source_key, o.state), '[]') FROM wooxy_cdc.outbox o) AS outbox,
          (SELECT coalesce(jsonb_agg(d.source_key ORDER BY d.source_key), '[]') FROM wooxy_cdc.dead_letters d) AS dead,
          (SELECT jsonb_agg(p ORDER BY p.mapping) FROM wooxy_cdc.snapshot_progress p) AS progress,
          (SELECT jsonb_agg(m ORDER BY m.name) FROM wooxy_cdc.mappings m) AS mappings,
          (SELECT count(*) FROM wooxy_cdc.contact_state) AS states,
          (SELECT jsonb_agg(jsonb_build_array(slot_name, confirmed_flush_lsn::text)) FROM pg_replication_slots WHERE database = current_database()) AS slots,
          (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'walsender') AS walsenders`)
      ).rows[0] as Record<string, unknown>;
    const before = await snapshotOf();

    const withLastName = writeConfig(raw(mapping({ fields: { userId: 'id', email: 'email', phoneNumber: 'phone', firstName: 'first_name', lastName: 'last_name' } })));
    const otherList = writeConfig(raw(mapping({ contactListId: 'other' })));
    // A filter narrowed by mistake: most of the list would go, which the mass-removal guard holds.
    const narrowed = writeConfig(raw(mapping({ filter: [{ column: 'id', in: [1, 2, 3] }], guard: { minRemovals: 5 } })));
    const same = writeConfig(base);
    const [plan, planLastName, planOther, planNarrowed] = await Promise.all([
      cli('plan', '--config', same, '--json'),
      cli('plan', '--config', withLastName, '--json', '--examples', '2'),
      cli('plan', '--config', otherList, '--json'),
      cli('plan', '--config', narrowed),
    ]);
    // Against what Wooxy holds: user 6's new name is an update, user 5's row is gone (a removal).
    expect(counts(json(plan))).toEqual({ add: 0, update: 1, remove: 1, unchanged: 27, 'dead-letter': 1 });
    expect(json(plan)[0]).toMatchObject({ rows: 29, statesChecked: 30, queued: 0, examples: { update: [{ key: '6', detail: 'firstName "F6" → "Six"' }], remove: [{ key: '5', detail: 'no row' }] } });
    // A field added to the mapping: every contact in the list is an update.
    expect(counts(json(planLastName))).toEqual({ add: 0, update: 27, remove: 1, unchanged: 1, 'dead-letter': 1 });
    expect(json(planLastName)[0]!.examples.update).toEqual([
      { key: '1', detail: 'lastName (none) → "L1"' },
      { key: '2', detail: 'lastName (none) → "L2"' },
    ]);
    // Another list holds none of them yet.
    expect(json(planOther)[0]).toMatchObject({ listChangedFrom: LIST, counts: { add: 27, update: 0, remove: 0, unchanged: 1, 'dead-letter': 1 } });
    // One removal of 28 synced is far below the default guard (100 and 10%).
    expect(json(plan)[0]!.guard).toEqual({ wouldHold: false, synced: 28, removePercent: 10, minRemovals: 100 });
    expect(planNarrowed.code, planNarrowed.stderr).toBe(0);
    expect(planNarrowed.stdout).toMatch(
      /^ {2}remove +25 {2}— held by the mass-removal guard \(more than 5 and more than 10% of 28 synced\) until `wooxy-cdc removals approve --mapping users`$/m,
    );

    const [snap, reconcile, resync, widened] = await Promise.all([
      cli('snapshot', '--config', same, '--dry-run', '--json'),
      cli('snapshot', '--config', same, '--dry-run', '--reconcile', '--json'),
      cli('resync', '--config', same, '--mapping', 'users', '--where', 'id > 20', '--dry-run', '--json'),
      cli('resync', '--config', same, '--mapping', 'users', '--where', 'id > 1990) OR (true', '--dry-run'),
    ]);
    // A snapshot queues what changed since the connector last saw it; only --reconcile finds the row gone.
    expect(json(snap)[0]).toMatchObject({ rows: 29, statesChecked: 0, queued: 1, counts: { add: 0, update: 1, remove: 0, unchanged: 27, 'dead-letter': 1 } });
    expect(json(reconcile)[0]).toMatchObject({ queued: 2, counts: { add: 0, update: 1, remove: 1, unchanged: 27, 'dead-letter': 1 } });
    // A resync sends again the unchanged contacts it reads: 21–28 (29 is out of the list, 30 invalid from the start).
    expect(json(resync)[0]).toMatchObject({ rows: 10, where: 'id > 20', queued: 8, counts: { add: 0, update: 0, remove: 0, unchanged: 9, 'dead-letter': 1 } });
    expect(widened.code).toBe(2);
    expect(widened.stderr).toMatch(/not one expression/);

    const text = await cli('plan', '--config', withLastName);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^plan users: public\.users → list crm; the table under this configuration against what Wooxy holds/);
    expect(text.stdout).toMatch(/^ {2}update +27$/m);
    expect(text.stdout).toMatch(/^ {6}1 +lastName \(none\) → "L1"$/m);
    expect(text.stdout).toMatch(/^ {6}5 +no row$/m);
    expect(text.stdout).toMatch(/\nNothing was written\.\n$/);
    const dry = await cli('snapshot', '--config', same, '--dry-run', '--reconcile');
    expect(dry.stdout).toMatch(/^Nothing was queued; without --dry-run this snapshot would queue 2 contact\(s\)\.$/m);

    expect(await snapshotOf()).toEqual(before);
  });
});
