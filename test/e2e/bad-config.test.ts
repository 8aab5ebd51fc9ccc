import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConfig } from '../helpers/child.js';
import { USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    timeout: 60_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Each kind of bad configuration exits 2 with a line naming the path (issue 7). */
describe('bad configurations', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('badcfg');
    await tdb.query(USERS_DDL);
  });
  afterAll(async () => tdb.drop());

  const base = () => ({
    postgres: { url: '${DATABASE_URL}', slot: tdb.slot, publication: tdb.publication },
    wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: 'http://127.0.0.1:9/v3' },
    http: { port: 0 },
    mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email' } }] as Array<Record<string, unknown>>,
  });
  const env = () => ({ DATABASE_URL: tdb.url, WOOXY_ACCESS_TOKEN: 't' });

  const cases: Array<[string, (c: ReturnType<typeof base>) => unknown, string, Record<string, string> | undefined]> = [
    ['unknown Wooxy field', (c) => ((c.mappings[0]!.fields as Record<string, string>).shoeSize = 'id'), 'mappings[0].fields.shoeSize: unknown Wooxy contact field', undefined],
    ['wrong type', (c) => (c.mappings[0]!.key = 42), 'mappings[0].key: expected a column name', undefined],
    ['missing environment variable', () => undefined, 'wooxy.accessToken: environment variable WOOXY_ACCESS_TOKEN is not set', { DATABASE_URL: 'postgres://x' }],
    ['duplicate mapping', (c) => c.mappings.push({ ...c.mappings[0]! }), 'mappings[1].name: duplicate mapping name "users"', undefined],
  ];
  for (const [name, spoil, message, customEnv] of cases) {
    it(`${name}: validate-config exits 2 naming the path`, () => {
      const c = base();
      spoil(c);
      const r = cli(['validate-config', '--config', writeConfig(c)], customEnv ?? env());
      expect(r.code, r.out).toBe(2);
      expect(r.out).toContain(message);
    });
  }

  it('unknown table and unknown column: run exits 2 naming the paths', () => {
    const c = base();
    c.mappings = [
      { table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'e_mail' } },
      { table: 'public.customers', contactListId: 'l', fields: { userId: 'id' } },
    ];
    const r = cli(['run', '--config', writeConfig(c)], env());
    expect(r.code, r.out).toBe(2);
    expect(r.out).toContain('mappings[0].fields.email: column e_mail does not exist in "public"."users"');
    expect(r.out).toContain('mappings[1].table: table "public"."customers" does not exist');
  });
});
