import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderConfigTable, README_PATH, replaceSection } from '../../src/config/docs.js';
import { ConfigError, loadConfig, parseConfig, parseConfigText, TOKEN_NOT_NEEDED } from '../../src/config/loader.js';
import { closest } from '../../src/config/suggest.js';

const env = { DATABASE_URL: 'postgres://u:secret@db/app', WOOXY_ACCESS_TOKEN: 'tok', WOOXY_LIST_ID: 'list-1' };

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const minimal = (mapping: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  postgres: { url: '${DATABASE_URL}' },
  wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}' },
  mappings: [{ table: 'public.users', contactListId: '${WOOXY_LIST_ID}', fields: { email: 'email' }, ...mapping }],
  ...extra,
});

describe('configuration', () => {
  it('loads the example, every transform in it valid, with every default filled in', async () => {
    const config = await loadConfig('config/example.yaml', env);
    expect(config.postgres).toMatchObject({ url: env.DATABASE_URL, slot: 'wooxy_cdc', publication: 'wooxy_cdc', schema: 'wooxy_cdc', autoCreate: true });
    expect(config.wooxy).toMatchObject({ baseUrl: 'https://api.wooxy.com/v3', accessToken: 'tok', maxInFlight: 10 });
    expect(config.mappings[0]).toMatchObject({ name: 'users', schema: 'public', tableName: 'users', key: 'id', contactListId: 'list-1' });
    expect(config.mappings[0]?.fields).toMatchObject({ userId: 'id', email: { column: 'email', format: 'email' }, phoneNumber: { column: 'phone', format: 'e164' }, firstName: 'first_name' });
    expect(config.mappings[0]).toMatchObject({ defaultCountry: 'DE', variables: { plan: { column: 'plan_code', map: { p1: 'pro', p2: 'team' }, default: 'free' } } });
    expect(config.postgres.publishColumns).toBe('mapped');
  });

  it('interpolates ${VAR:-default} and $${ escapes, and coerces numbers and booleans from the environment', () => {
    const config = parseConfig(
      minimal({}, { http: { port: '${PORT:-8080}' }, postgres: { url: 'postgres://h/$${x}', autoCreate: '${AUTO}' } }),
      { ...env, AUTO: 'false' },
    );
    expect(config.http.port).toBe(8080);
    expect(config.postgres.url).toBe('postgres://h/${x}');
    expect(config.postgres.autoCreate).toBe(false);
  });

  it('names every missing environment variable by path', () => {
    expect(problems(() => parseConfig(minimal(), {}))).toEqual([
      'postgres.url: environment variable DATABASE_URL is not set',
      'wooxy.accessToken: environment variable WOOXY_ACCESS_TOKEN is not set',
      'mappings[0].contactListId: environment variable WOOXY_LIST_ID is not set',
    ]);
  });

  it('reports one line per bad path', () => {
    const found = problems(() =>
      parseConfig(
        minimal(
          { fields: { email: 42, phoneNumber: { column: 'phone', format: 'bogus' }, favouriteColour: 'c' }, filter: [{ column: 'x' }] },
          { wooxy: { accessToken: 't', maxInFlight: 11 }, surprise: true },
        ),
        env,
      ),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        'mappings[0].fields.email: expected a column name, {column: NAME}, {template: TEXT} or {value: CONSTANT}',
        expect.stringMatching(/^mappings\[0\]\.fields\.phoneNumber\.format: Invalid option: expected one of "auto"\|"text"/),
        expect.stringMatching(/^mappings\[0\]\.fields\.favouriteColour: unknown Wooxy contact field/),
        'mappings[0].filter[0]: a condition takes exactly one of equals, notEquals, in, notIn, isNull',
        'wooxy.maxInFlight: Wooxy allows at most 10 concurrent requests',
        '(root): unknown option "surprise"',
      ]),
    );
  });

  it('names each mistake in a transform by its path', () => {
    const found = problems(() =>
      parseConfig(
        minimal({
          defaultCountry: 'Germany',
          fields: {
            email: { column: 'email', format: 'email', lowercaseLocalPart: 'yes' },
            phoneNumber: { column: 'phone', format: 'e164', defaultCountry: 'XX' },
            userId: { column: 'id', defaultCountry: 'DE' },
            name: { template: '{first_name {last_name}' },
            firstName: { template: 'no placeholder' },
            lastName: { column: 'last', default: 'x' },
            contactLanguage: { column: 'prefs', path: 'a..b' },
            contactTimezone: { column: 'tz', map: { a: { nested: true } } },
            sourceId: { column: 'src', template: '{x}' },
          },
          variables: { plan: { column: 'plan', format: 'boolean' }, since: { column: 'since', type: 'date', format: 'email' }, Bad1: 'x' },
        }),
        env,
      ),
    );
    expect(found).toEqual([
      'mappings[0].fields.email.lowercaseLocalPart: expected true or false',
      'mappings[0].fields.phoneNumber.defaultCountry: libphonenumber-js has no numbering plan for this country code',
      'mappings[0].fields.userId.defaultCountry: defaultCountry applies to format: e164',
      'mappings[0].fields.name.template: unclosed { at position 1; write {{ for a literal brace',
      'mappings[0].fields.firstName.template: a template needs at least one {column}; use {value: …} for a constant',
      'mappings[0].fields.lastName.default: default applies to a value map; add map: or remove default',
      'mappings[0].fields.contactLanguage.path: expected keys separated by dots, e.g. settings.language',
      expect.stringMatching(/^mappings\[0\]\.fields\.contactTimezone\.map\.a: /),
      'mappings[0].fields.sourceId: unknown option "column"',
      expect.stringMatching(/^mappings\[0\]\.variables\.plan\.format: Invalid option: expected one of "auto"\|"text"\|"e164"/),
      'mappings[0].variables.since.format: a date variable takes no format',
      'mappings[0].variables.Bad1: variable names are latin lowerCamelCase without digits',
      'mappings[0].defaultCountry: expected an ISO 3166-1 alpha-2 country code in capitals, such as DE',
    ]);
  });

  it('takes a mapping-level defaultCountry only where a field converts phone numbers', () => {
    expect(problems(() => parseConfig(minimal({ defaultCountry: 'DE', fields: { phoneNumber: 'phone' } }), env))).toEqual([
      'mappings[0].defaultCountry: defaultCountry applies to fields with format: e164, and none has it (e.g. phoneNumber: {column: phone, format: e164})',
    ]);
    const config = parseConfig(minimal({ defaultCountry: 'DE', fields: { phoneNumber: { column: 'phone', format: 'e164' } } }), env);
    expect(config.mappings[0]).toMatchObject({ defaultCountry: 'DE', fields: { phoneNumber: { column: 'phone', format: 'e164' } } });
  });

  it('requires an identifier field and rejects duplicate mappings', () => {
    expect(problems(() => parseConfig(minimal({ fields: { firstName: 'first_name' } }), env))).toEqual([
      'mappings[0].fields: map at least one identifier: userId, email, phoneNumber',
    ]);
    const twice = minimal();
    twice.mappings.push({ ...twice.mappings[0]! });
    expect(problems(() => parseConfig(twice, env))).toEqual([expect.stringMatching(/^mappings\[1\]\.name: duplicate mapping name "users"/)]);
  });

  it('reports YAML syntax errors with a line number', () => {
    expect(problems(() => parseConfigText('postgres:\n  url: [unclosed\n', env))[0]).toMatch(/^line \d+: /);
  });

  it('keeps the README configuration table in step with the schema', async () => {
    const readme = await readFile(README_PATH, 'utf8');
    expect(replaceSection(readme, renderConfigTable()), 'README table is stale: run npm run docs:config').toBe(readme);
  });

  it('lets commands that never call Wooxy run without the access token, and no other command', () => {
    const { WOOXY_ACCESS_TOKEN: _unused, ...noToken } = env;
    expect(problems(() => parseConfig(minimal(), noToken))).toEqual(['wooxy.accessToken: environment variable WOOXY_ACCESS_TOKEN is not set']);
    const config = parseConfig(minimal(), noToken, undefined, { withoutWooxy: true });
    expect(config.wooxy.accessToken).toBe(TOKEN_NOT_NEEDED);
    // Everything else is still checked.
    const { DATABASE_URL: _url, ...neither } = noToken;
    expect(problems(() => parseConfig(minimal(), neither, undefined, { withoutWooxy: true }))).toEqual(['postgres.url: environment variable DATABASE_URL is not set']);
    // A token that is there is used as it is.
    expect(parseConfig(minimal(), env, undefined, { withoutWooxy: true }).wooxy.accessToken).toBe('tok');
  });
});

describe('did you mean', () => {
  it('suggests the option or contact field a typo most likely meant, case slips included', () => {
    const problems = (() => {
      try {
        parseConfig({ postgres: { url: 'x', slott: 'a' }, wooxy: { accessToken: 't', timeoutMS: 3 }, mappings: [{ table: 'u', contactListId: 'l', fields: { emial: 'email', userId: 'id' }, variabels: {} }] }, {});
      } catch (e) {
        return (e as { problems: Array<{ path: string; message: string }> }).problems;
      }
      return [];
    })();
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'postgres', message: 'unknown option "slott" (did you mean "slot"?)' },
        { path: 'wooxy', message: 'unknown option "timeoutMS" (did you mean "timeoutMs"?)' },
        { path: 'mappings[0]', message: 'unknown option "variabels" (did you mean "variables"?)' },
        expect.objectContaining({ path: 'mappings[0].fields.emial', message: expect.stringMatching(/^unknown Wooxy contact field \(did you mean "email"\?\)/) }),
      ]),
    );
  });

  it('suggests nothing for a word far from every option', () => {
    expect(closest('zzzzzz', ['slot', 'publication'])).toBeNull();
    expect(closest('slot', ['slot'])).toBeNull();
  });
});
