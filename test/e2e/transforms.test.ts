import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector.js';
import { compareList } from '../../src/demo/converge.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { testConfig, testConnector } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Transforms end to end: German numbers as people type them reach Wooxy in E.164, whether the snapshot read
 * the row or the stream carried it; a number no country allows is a dead letter naming the value and the rule,
 * and the other rows flow. The list must equal the table projected through the one mapper, field by field.
 */
describe('transforms from table rows to the list', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector;

  const insert = (rows: Array<[number, string | null, string | null, string | null, string | null, string, string | null]>) =>
    tdb.query(
      `INSERT INTO users (id, email, phone, first_name, last_name, prefs, tier)
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, email text, phone text, first_name text, last_name text, prefs jsonb, tier text)`,
      [JSON.stringify(rows.map(([id, email, phone, first_name, last_name, prefs, tier]) => ({ id, email, phone, first_name, last_name, prefs: JSON.parse(prefs) as unknown, tier })))],
    );

  beforeAll(async () => {
    tdb = await createTestDatabase('transforms');
    await tdb.query(`CREATE TABLE users (id bigint PRIMARY KEY, email text, phone text, first_name text, last_name text, prefs jsonb, tier text, notes text)`);
    // Read by the snapshot.
    await insert([
      [1, ' Ada@Example.COM', '030 1234567', 'Ada', 'Lovelace', '{"language": "en-GB", "tz": "europe/london"}', 'gold'],
      [2, 'grace@example.com', '(0151) 2345-6789', 'Grace', null, '{"language": "EN"}', 'silver'],
      [3, 'linus@bücher.example', '+49 30 7654321', null, 'Torvalds', '{}', null],
    ]);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: 'l', variables: [{ name: 'tier' }] }], processing: { delayMs: 0 } });
    const config = testConfig(tdb, {
      wooxy: { accessToken: 'tok', baseUrl: emulator.url, timeoutMs: 2000 },
      snapshot: { onStart: true },
      delivery: { idleIntervalMs: 20 },
      reconcile: { pollIntervalMs: 50 },
      mappings: [
        {
          table: 'users',
          contactListId: 'l',
          defaultCountry: 'DE',
          fields: {
            userId: 'id',
            email: { column: 'email', format: 'email' },
            phoneNumber: { column: 'phone', format: 'e164' },
            name: { template: '{first_name} {last_name}' },
            contactLanguage: { column: 'prefs', path: 'language' },
            contactTimezone: { column: 'prefs', path: 'tz' },
          },
          variables: { tier: { column: 'tier', map: { gold: 'vip', silver: 'regular' }, default: 'standard' } },
        },
      ],
    });
    connector = testConnector(config);
    await connector.start();
    await waitFor(() => connector.replication?.isStreaming, { message: 'streaming' });
  });
  afterAll(async () => {
    await connector.stop();
    await emulator.close();
    await tdb.drop();
  });

  it('sends E.164 numbers from local German formats; an unusable number is a dead letter and the others flow', async () => {
    // Carried by the stream.
    await insert([
      [4, 'margaret@example.com', '0049 89 1234567', 'Margaret', 'Hamilton', '{"language": "de-DE", "tz": "Europe/Berlin"}', 'bronze'],
      [5, 'alan@example.com', '089/12345678', 'Alan', 'Turing', '{"language": "de"}', 'gold'],
      [6, 'broken@example.com', '12', 'Broken', 'Number', '{}', 'gold'],
      [7, 'later@example.com', '+44 20 7946 0958', 'Barbara', 'Liskov', '{}', 'silver'],
    ]);
    await waitFor(async () => (emulator.contacts('l') ?? []).length === 6 && (await tdb.query('SELECT 1 FROM wooxy_cdc.dead_letters')).rowCount === 1, {
      timeoutMs: 30_000,
      message: 'six contacts in the list and one dead letter',
    });
    const byUser = new Map((emulator.contacts('l') ?? []).map((c) => [c.userId, c]));
    expect([...byUser.keys()].sort()).toEqual(['1', '2', '3', '4', '5', '7']);
    expect(Object.fromEntries([...byUser].map(([id, c]) => [id, c.phoneNumber]))).toEqual({
      1: '+49301234567',
      2: '+4915123456789',
      3: '+49307654321',
      4: '+49891234567',
      5: '+498912345678',
      7: '+442079460958',
    });
    expect(byUser.get('1')).toMatchObject({ email: 'Ada@example.com', name: 'Ada Lovelace', contactLanguage: 'en', contactTimezone: 'Europe/London', variables: { tier: 'vip' } });
    expect(byUser.get('2')).toMatchObject({ name: 'Grace', contactLanguage: 'en', variables: { tier: 'regular' } });
    expect(byUser.get('3')).toMatchObject({ email: 'linus@xn--bcher-kva.example', name: 'Torvalds', variables: { tier: '' } });
    expect(byUser.get('4')).toMatchObject({ contactLanguage: 'de', contactTimezone: 'Europe/Berlin', variables: { tier: 'standard' } });

    const dead = (await tdb.query<{ source_key: string; error_code: string; human_error: string }>('SELECT source_key, error_code, human_error FROM wooxy_cdc.dead_letters')).rows;
    expect(dead).toEqual([
      {
        source_key: '6',
        error_code: 'ROW_INVALID',
        human_error: expect.stringContaining('phoneNumber (column phone): "12" is not a possible phone number: too short (format e164, defaultCountry DE)'),
      },
    ]);

    // Snapshot rows (1–3) and stream rows (4–7) went through the one mapper: the list is the table projected.
    const rows = (await tdb.query<Record<string, unknown>>('SELECT * FROM users ORDER BY id')).rows;
    const result = compareList(connector.mappers[0]!, rows, emulator.contacts('l') ?? []);
    expect(result).toMatchObject({ converged: true, expected: 6, invalid: ['6'], mismatched: [], missing: [], unexpected: [] });
  });

  it('fixes a dead letter when the row is fixed, and sends nothing for a change of an unmapped column', async () => {
    await tdb.query(`UPDATE users SET phone = '0170 1234567' WHERE id = 6`);
    await waitFor(() => (emulator.contacts('l') ?? []).some((c) => c.userId === '6'), { timeoutMs: 30_000, message: 'the fixed row in the list' });
    expect((emulator.contacts('l') ?? []).find((c) => c.userId === '6')?.phoneNumber).toBe('+491701234567');
    const writes = () => {
      const { byEndpoint } = emulator.stats();
      return (['contacts/add', 'contacts/update', 'contacts/remove'] as const).reduce((n, e) => n + (byEndpoint[e].accepted ?? 0), 0);
    };
    const sent = writes();
    await tdb.query(`UPDATE users SET notes = 'unmapped' WHERE id = 1`);
    await tdb.query(`UPDATE users SET first_name = 'Augusta Ada' WHERE id = 1`);
    await waitFor(() => (emulator.contacts('l') ?? []).find((c) => c.userId === '1')?.name === 'Augusta Ada Lovelace', { message: 'the name change' });
    expect(writes() - sent).toBe(1); // the name change; the unmapped column's change queued nothing
  });
});
