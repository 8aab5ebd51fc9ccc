import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { compileMapping, type Mapper } from '../../../src/mapping/mapper.js';
import { validateContact } from '../../../src/wooxy/validate.js';

const vendor = (contact: Record<string, unknown>) => validateContact(contact, { mode: 'add', position: 0 });

function mapper(mapping: Record<string, unknown>): Mapper {
  const config = parseConfig({ postgres: { url: 'postgres://x' }, wooxy: { accessToken: 't' }, mappings: [{ table: 'users', contactListId: 'l', ...mapping }] }, {});
  return compileMapping(config.mappings[0]!, vendor);
}

const users = mapper({
  defaultCountry: 'DE',
  fields: {
    userId: 'id',
    email: { column: 'email', format: 'email' },
    phoneNumber: { column: 'phone', format: 'e164' },
    name: { template: '{first_name} {last_name}' },
    contactLanguage: { column: 'prefs', path: 'locale.language' },
    contactTimezone: 'tz',
    customerSourceId: { column: 'tier', map: { gold: 'VIP', silver: 'REGULAR' }, default: 'STANDARD' },
  },
  variables: { plan: { column: 'plan', map: { p1: 'pro', f0: 'free' } }, mobile: { column: 'prefs', path: 'mobile', format: 'e164', defaultCountry: 'AT' } },
});

const row = {
  id: 7,
  email: ' Ada@Example.COM ',
  phone: '(030) 123-4567',
  first_name: 'Ada',
  last_name: null,
  prefs: { locale: { language: 'de-AT' }, mobile: '0664 1234567' },
  tz: 'europe/vienna',
  tier: 'bronze',
  plan: 'p1',
};

describe('the mapper with transforms', () => {
  it('projects a row through every transform', () => {
    expect(users.project(row)).toEqual({
      ok: true,
      contact: {
        userId: '7',
        email: 'Ada@example.com',
        phoneNumber: '+49301234567',
        name: 'Ada',
        contactLanguage: 'de',
        contactTimezone: 'Europe/Vienna',
        customerSourceId: 'STANDARD',
        variables: [
          { name: 'plan', value: 'pro' },
          { name: 'mobile', value: '+436641234567' },
        ],
      },
    });
  });

  it('reads every column a transform needs, each named by where the mapping uses it', () => {
    expect([...users.columns].sort()).toEqual(['email', 'first_name', 'id', 'last_name', 'phone', 'plan', 'prefs', 'tier', 'tz']);
    expect(users.columnPaths.get('prefs')).toEqual(['fields.contactLanguage', 'variables.mobile']);
    expect(users.columnUses.get('prefs')).toEqual([
      { path: 'fields.contactLanguage', use: 'json' },
      { path: 'variables.mobile', use: 'json' },
    ]);
    expect(users.columnUses.get('last_name')).toEqual([{ path: 'fields.name', use: 'text' }]);
    expect(users.columnUses.get('phone')).toEqual([{ path: 'fields.phoneNumber', use: 'phone' }]);
  });

  it('makes a row dead when a transform fails, naming the value and the rule; the vendor adds its own words', () => {
    const p = users.project({ ...row, phone: '12', plan: 'enterprise' });
    expect(p).toEqual({
      ok: false,
      problems: [
        'phoneNumber (column phone): "12" is not a possible phone number: too short (format e164, defaultCountry DE)',
        'variables.plan (column plan): "enterprise" is not in the value map (f0, p1) and there is no default',
        '12 is not a valid E.164 phone number',
      ],
    });
  });

  it('leaves a field as Wooxy has it when a column it reads is unknown (an unchanged TOASTed value)', () => {
    const p = users.project({ ...row, last_name: undefined, prefs: undefined });
    expect(p.ok && p.contact).toMatchObject({ userId: '7', email: 'Ada@example.com' });
    expect(p.ok && 'name' in p.contact).toBe(false);
    expect(p.ok && 'contactLanguage' in p.contact).toBe(false);
    expect(p.ok && p.contact.variables).toEqual([{ name: 'plan', value: 'pro' }]);
  });

  it('treats NULL and blank inputs as no value: identifiers and codes left out, text and variables cleared', () => {
    const p = users.project({ ...row, email: '   ', phone: null, first_name: null, prefs: null, tz: '', tier: null, plan: null });
    expect(p).toEqual({ ok: true, contact: { userId: '7', name: '', variables: [{ name: 'plan', value: '' }, { name: 'mobile', value: '' }] } });
  });

  it('normalises languages and time zones without being asked (auto), and still names bad ones', () => {
    const plain = mapper({ fields: { userId: 'id', contactLanguage: 'lang', contactTimezone: 'tz' } });
    expect(plain.project({ id: 1, lang: 'EN-us', tz: 'utc' })).toEqual({ ok: true, contact: { userId: '1', contactLanguage: 'en', contactTimezone: 'UTC' } });
    const bad = plain.project({ id: 1, lang: 'klingon', tz: '+02:00' });
    expect(bad.ok).toBe(false);
    // Ours first; then the vendor's, whose time zone rule depends on the runtime's ICU (newer ones take offsets).
    expect(!bad.ok && bad.problems.slice(0, 3)).toEqual([
      'contactLanguage (column lang): "klingon" is not an ISO 639-1 language (format language)',
      'contactTimezone (column tz): "+02:00" is a UTC offset, not a time zone name such as Europe/Berlin (format timezone)',
      'Argument language must be a valid ISO language',
    ]);
  });

  it('keeps a built-in conversion problem as a fallback behind the vendor message', () => {
    const m = mapper({ fields: { userId: 'id', active: 'active' } });
    expect(m.project({ id: 1, active: 'maybe' })).toEqual({ ok: false, problems: ['Argument active can be true or false'] });
  });
});

describe('the definition', () => {
  const json = (m: Mapper) => JSON.stringify(m.definition);

  it('is the same for configurations that project every row alike', () => {
    const a = mapper({ fields: { userId: 'id', email: 'email', contactLanguage: 'lang' }, variables: { plan: 'plan' }, filter: [{ column: 'a', isNull: true }, { column: 'b', equals: 1 }] });
    const b = mapper({
      fields: { contactLanguage: { column: 'lang', format: 'language' }, email: { column: 'email', format: 'auto' }, userId: { column: 'id' } },
      variables: { plan: { column: 'plan', type: 'string' } },
      filter: [{ column: 'b', equals: 1 }, { column: 'a', isNull: true }],
    });
    expect(json(a)).toBe(json(b));
    expect(JSON.parse(json(a))).toEqual(a.definition); // JSON-serialisable as it is
    expect(a.definition).toEqual({
      revision: 1,
      table: { schema: 'public', name: 'users' },
      key: 'id',
      listId: 'l',
      upsert: false,
      fields: { contactLanguage: { column: 'lang', format: 'language' }, email: { column: 'email', format: 'text' }, userId: { column: 'id', format: 'text' } },
      variables: { plan: { column: 'plan', format: 'text', type: 'string' } },
      filter: [{ column: 'a', isNull: true }, { column: 'b', equals: 1 }],
    });
  });

  it('changes with every transform', () => {
    const base = { fields: { userId: 'id', phoneNumber: { column: 'phone', format: 'e164', defaultCountry: 'DE' } } };
    const variants = [
      base,
      { fields: { userId: 'id', phoneNumber: { column: 'phone', format: 'e164', defaultCountry: 'AT' } } },
      { fields: { userId: 'id', phoneNumber: { column: 'phone', format: 'e164' } } },
      { fields: { userId: 'id', phoneNumber: { column: 'phone' } } },
      { fields: { userId: 'id', phoneNumber: { column: 'phone', map: { a: 'b' } } } },
      { fields: { userId: 'id', phoneNumber: { column: 'phone', map: { a: 'b' }, default: null } } },
      { fields: { userId: 'id', phoneNumber: { column: 'phone', path: 'a' } } },
      { fields: { userId: 'id', phoneNumber: { template: '{phone}' } } },
      { fields: { userId: 'id', phoneNumber: { value: '+49301234567' } } },
      { fields: { userId: 'id', email: { column: 'phone', format: 'email' } } },
      { fields: { userId: 'id', email: { column: 'phone', format: 'email', lowercaseLocalPart: true } } },
      { ...base, upsert: true },
      { ...base, key: 'uid' },
      { ...base, contactListId: 'other' },
      { ...base, variables: { plan: 'plan' } },
      { ...base, filter: [{ column: 'x', isNull: false }] },
    ];
    const seen = new Set(variants.map((v) => json(mapper(v))));
    expect(seen.size).toBe(variants.length);
    // The mapping-level country is the field's country: the same effective definition.
    expect(json(mapper({ fields: { userId: 'id', phoneNumber: { column: 'phone', format: 'e164' } }, defaultCountry: 'AT' }))).toBe(json(mapper({ fields: { userId: 'id', phoneNumber: { column: 'phone', format: 'e164', defaultCountry: 'AT' } } })));
  });
});
