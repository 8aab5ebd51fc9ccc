import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { testConfig, testConnector } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Every validation rule of the reference pages that a row can break, provoked from a table row: each bad
 * contact ends in dead letters with the vendor's message, and the good one reaches the list. The table and
 * column names need quoting, to prove nothing is spliced into SQL unquoted.
 */
const COLUMNS = {
  id: 'bigint PRIMARY KEY',
  'E-mail': 'text',
  phone: 'text',
  uid: 'text',
  first: 'text',
  last: 'text',
  active: 'text',
  birthday: 'text',
  lang: 'text',
  gender: 'text',
  tz: 'text',
  score: 'text',
  avatar: 'text',
  facebook: 'text',
  instagram: 'text',
  linkedin: 'text',
  twitter: 'text',
  tiktok: 'text',
  source: 'text',
  customer_source: 'text',
  cac_value: 'text',
  cac_currency: 'text',
  signup: 'text',
  "Select \"Order\"": 'text',
};

const good = {
  'E-mail': 'good@example.com', phone: '+15555550100', uid: 'u-good', first: 'Zoë 🌍', last: 'Ωmega', active: 't', birthday: '1990-01-01',
  lang: 'en', gender: 'f', tz: 'Europe/Tallinn', score: '10', avatar: 'https://img.example.com/a.png', facebook: 'facebook.com/x',
  instagram: 'https://instagram.com/x', linkedin: 'https://linkedin.com/in/x', twitter: 'https://twitter.com/x', tiktok: 'https://tiktok.com/@x',
  source: null, customer_source: 'abc123', cac_value: '2.05', cac_currency: 'EUR', signup: '2024-02-29', 'Select "Order"': 'tab\tand\u0001control',
};

/** One row per rule: the column to spoil, its bad value, and the vendor message it must produce. */
const CASES: Array<[string, string, string]> = [
  ['E-mail', 'not-an-email', 'invalid RFC2822 email not-an-email at email field'],
  ['phone', '12345', '12345 is not a valid E.164 phone number'],
  ['uid', 'x'.repeat(130), 'Argument userId must be less than 125 symbols'],
  ['first', 'f'.repeat(256), 'Argument firstName must be a string with max length within 255 characters'],
  ['last', 'l'.repeat(10_000), 'Argument lastName must be a string with max length within 255 characters'],
  ['active', 'maybe', 'Argument active can be true or false'],
  ['birthday', '31/12/1990', 'Argument birthday must be a YYYY-MM-DD date'],
  ['lang', 'klingon', 'Argument language must be a valid ISO language'],
  ['gender', 'robot', 'Unknown gender value'],
  ['tz', 'Mars/Olympus_Mons', 'Argument timezone must be a valid timezone string'],
  ['score', 'lots', 'Argument score must have a numeric value'],
  ['avatar', 'not a url', 'Argument avatarLink must be a valid URL'],
  ['facebook', 'not a url', 'Argument facebookLink must be a valid URL'],
  ['instagram', 'not a url', 'Argument instagramLink must be a valid URL'],
  ['linkedin', 'not a url', 'Argument linkedInLink must be a valid URL'],
  ['twitter', 'not a url', 'Argument twitterLink must be a valid URL'],
  ['tiktok', 'not a url', 'Argument tiktokLink must be a valid URL'],
  ['customer_source', 'has spaces and is far too long for the rule!', 'Argument customerSourceId must be an alphanumeric string with max length within 40 characters'],
  ['cac_value', '-3', 'CAC value must be a positive float'],
  ['cac_currency', 'GBP', 'CAC currency GBP not allowed. USD, EUR are'],
  // Rules only Wooxy can apply (it knows the account's source ids and the list's variables): rejected
  // request-level, then isolated by splitting the batch.
  ['source', 'unknown-source', 'sourceId unknown-source not found in your account at contact position 0'],
  ['signup', 'yesterday', 'Variable signup type is date, but value is not valid date. Value yesterday'],
];

describe('bad input from table rows', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector;

  beforeAll(async () => {
    tdb = await createTestDatabase('badinput');
    const cols = Object.entries(COLUMNS).map(([c, t]) => `"${c.replace(/"/g, '""')}" ${t}`);
    await tdb.query(`CREATE TABLE "Sign-ups ""2024""" (${cols.join(', ')})`);
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: 'l', variables: [{ name: 'signup', type: 'date' }, { name: 'note', type: 'string' }] }] });
    const config = testConfig(tdb, {
      wooxy: { accessToken: 'tok', baseUrl: emulator.url, timeoutMs: 2000 },
      delivery: { idleIntervalMs: 30 },
      reconcile: { pollIntervalMs: 100 },
      mappings: [
        {
          table: 'public."Sign-ups ""2024"""',
          name: 'signups',
          contactListId: 'l',
          fields: {
            email: 'E-mail', phoneNumber: 'phone', userId: 'uid', firstName: 'first', lastName: 'last', active: 'active',
            contactBirthday: { column: 'birthday', format: 'text' }, contactLanguage: 'lang', contactGender: 'gender', contactTimezone: 'tz',
            contactScore: 'score', avatarLink: 'avatar', facebookLink: 'facebook', instagramLink: 'instagram', linkedInLink: 'linkedin',
            twitterLink: 'twitter', tiktokLink: 'tiktok', sourceId: 'source', customerSourceId: 'customer_source',
            cac: { value: 'cac_value', currency: 'cac_currency' },
          },
          variables: { signup: 'signup', note: 'Select "Order"' },
        },
      ],
    });
    connector = testConnector(config, {
      log: createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...c.toString().split('\n').filter(Boolean)), cb()) }) }),
    });
    await connector.start();
    await waitFor(() => connector.replication?.isStreaming);
  });
  const lines: string[] = [];
  afterAll(async () => {
    await connector.stop();
    await emulator.close();
    await tdb.drop();
  });

  it('dead-letters each broken rule with the vendor message while the good row flows', async () => {
    const names = Object.keys(good);
    const insert = async (id: number, values: Record<string, string | null>) =>
      tdb.query(
        `INSERT INTO "Sign-ups ""2024""" (id, ${names.map((n) => `"${n.replace(/"/g, '""')}"`).join(', ')}) VALUES ($1, ${names.map((_, i) => `$${i + 2}`).join(', ')})`,
        [id, ...names.map((n) => values[n] ?? null)],
      );
    await insert(1, good);
    for (const [i, [column, bad]] of CASES.entries()) {
      await insert(100 + i, { ...good, 'E-mail': `bad${i}@example.com`, phone: `+1555555${String(i).padStart(4, '0')}`, uid: `u-${i}`, [column]: bad });
    }
    await waitFor(async () => (await tdb.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters')).rows[0]!.n === CASES.length, {
      timeoutMs: 30_000,
      message: 'a dead letter per broken rule',
    });
    const { rows } = await tdb.query<{ source_key: string; error_code: string; human_error: string }>(
      'SELECT source_key, error_code, human_error FROM wooxy_cdc.dead_letters ORDER BY source_key::int',
    );
    for (const [i, [column, , message]] of CASES.entries()) {
      const dead = rows.find((r) => r.source_key === String(100 + i));
      expect(dead?.human_error, `${column}`).toContain(message);
    }
    // Each one named in the log at warn (the first 20 a minute one by one), and counted.
    const warned = lines.map((l) => JSON.parse(l) as { level: string; msg: string; code?: string; key?: string }).filter((l) => l.msg === 'contact dead-lettered');
    expect(warned.length).toBe(Math.min(20, CASES.length));
    expect(warned[0]).toMatchObject({ level: 'warn', code: 'ROW_INVALID', key: expect.any(String) });
    const counted = (await connector.metrics.deadLetters.get()).values.reduce((n, v) => n + v.value, 0);
    expect(counted).toBe(rows.length);
    await waitFor(() => (emulator.contacts('l') ?? []).length === 1);
    expect(emulator.contacts('l')?.[0]).toMatchObject({
      userId: 'u-good', email: 'good@example.com', firstName: 'Zoë 🌍', lastName: 'Ωmega', contactGender: 2, cac: { value: 2.05, currency: 'EUR' },
      variables: { signup: '2024-02-29', note: 'tab\tand\u0001control' },
    });
  });
});
