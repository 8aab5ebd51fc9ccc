import { describe, expect, it } from 'vitest';
import { canRead, typeChange, typeChangeStops, type ColumnUse, type PgType } from '../../../src/mapping/column-types.js';

/** Type descriptions as pg_type gives them (src/source/type-descriptions.ts reads these from a live server). */
const T = (typname: string, name: string, category: string, oid = 0): PgType => ({ oid, typname, name, category, base: null });
const text = T('text', 'text', 'S', 25);
const varchar = T('varchar', 'character varying', 'S', 1043);
const bpchar = T('bpchar', 'character', 'S', 1042);
const citext = T('citext', 'citext', 'S', 90001);
const state = T('user_state', 'user_state', 'E', 90002);
const int2 = T('int2', 'smallint', 'N', 21);
const int4 = T('int4', 'integer', 'N', 23);
const int8 = T('int8', 'bigint', 'N', 20);
const numeric = T('numeric', 'numeric', 'N', 1700);
const money = T('money', 'money', 'N', 790);
const bool = T('bool', 'boolean', 'B', 16);
const date = T('date', 'date', 'D', 1082);
const timestamp = T('timestamp', 'timestamp without time zone', 'D', 1114);
const timestamptz = T('timestamptz', 'timestamp with time zone', 'D', 1184);
const time = T('time', 'time without time zone', 'D', 1083);
const json = T('json', 'json', 'U', 114);
const jsonb = T('jsonb', 'jsonb', 'U', 3802);
const uuid = T('uuid', 'uuid', 'U', 2950);
const bytea = T('bytea', 'bytea', 'U', 17);
const textArray = T('_text', 'text[]', 'A', 1009);
const domain = (name: string, base: PgType): PgType => ({ oid: 90100, typname: name, name, category: base.category, base });
const email = domain('email_address', text);
const prefs = domain('prefs_doc', jsonb);

describe('(a) which column types a field can read', () => {
  const cases: Array<[ColumnUse, PgType[], PgType[]]> = [
    ['text', [text, varchar, bpchar, citext, state, int4, int8, numeric, bool, date, timestamptz, uuid, email], [json, jsonb, bytea, textArray, prefs]],
    ['code', [text, varchar, bpchar, citext, state, email], [jsonb, json, int4, bool, date, uuid]],
    ['email', [text, citext, varchar, email, state], [int4, jsonb, uuid]],
    ['phone', [text, varchar, int8, numeric], [jsonb, bool, date]],
    ['boolean', [bool, text, state, int2, int4], [jsonb, date, numeric]],
    ['date', [date, timestamp, timestamptz, text, varchar], [time, int4, jsonb, bool]],
    ['number', [int2, int4, int8, numeric, text], [money, bool, date, jsonb]],
    ['gender', [text, bpchar, state, int2], [bool, jsonb]],
    ['json', [json, jsonb, prefs], [text, int4, textArray]],
    ['key', [int4, int8, text, uuid, numeric], [jsonb, timestamptz, bool]],
    ['presence', [jsonb, bytea, textArray, int4], []],
  ];
  for (const [use, yes, no] of cases) {
    it(`${use} reads ${yes.map((t) => t.typname).join(', ')}${no.length ? `; not ${no.map((t) => t.typname).join(', ')}` : ''}`, () => {
      for (const t of yes) expect(canRead(use, t), `${use} ← ${t.name}`).toEqual({ ok: true });
      for (const t of no) expect(canRead(use, t).ok, `${use} ← ${t.name}`).toBe(false);
    });
  }

  it('says what it wants and what it got, by type name', () => {
    expect(canRead('code', jsonb)).toEqual({ ok: false, reason: 'reads text (text, varchar, char, citext, an enum); json needs a path, not jsonb' });
    expect(canRead('json', domain('note', text))).toEqual({ ok: false, reason: 'reads json or jsonb, not note (a domain over text)' });
  });
});

describe('(b) which type changes stop a mapping', () => {
  const allUses: ColumnUse[] = ['text', 'code', 'email', 'phone', 'boolean', 'date', 'number', 'gender', 'json', 'key', 'presence'];

  it.each([
    ['text', [text, varchar, bpchar, citext, varchar, text]],
    ['email', [text, varchar, citext, bpchar, email, text]],
    ['key', [int2, int4, int8, numeric, int8]],
    ['key', [int4, text]],
    ['number', [int2, int4, int8, numeric]],
    ['date', [timestamp, timestamptz, timestamp, date]],
    ['json', [json, jsonb, prefs, jsonb]],
    ['code', [text, email, varchar]],
  ] as Array<[ColumnUse, PgType[]]>)('%s goes on through %#', (use, chain) => {
    for (let i = 1; i < chain.length; i++) expect(typeChange(use, chain[i - 1]!, chain[i]!), `${chain[i - 1]!.name} → ${chain[i]!.name}`).toEqual({ ok: true });
  });

  it('goes on whenever the type stays (varchar(n) → varchar(m), numeric(p) → numeric(q) keep the oid)', () => {
    for (const use of allUses) for (const t of [text, varchar, int4, numeric, jsonb, bool]) if (canRead(use, t).ok) expect(typeChange(use, t, t)).toEqual({ ok: true });
  });

  it('stops for a type the conversion cannot read, naming both types', () => {
    expect(typeChange('email', text, int4)).toEqual({ ok: false, reason: 'text → integer: reads text (text, varchar, char, citext, an enum); json needs a path, not integer' });
    expect(typeChange('text', text, jsonb)).toMatchObject({ ok: false, reason: expect.stringMatching(/^text → jsonb: .*json needs a path/) });
    expect(typeChange('json', jsonb, text)).toMatchObject({ ok: false, reason: expect.stringMatching(/^jsonb → text: reads json or jsonb/) });
    expect(typeChange('date', timestamptz, time)).toMatchObject({ ok: false });
    expect(typeChange('boolean', bool, date)).toMatchObject({ ok: false });
    expect(typeChange('email', email, domain('n', int4))).toMatchObject({ ok: false, reason: expect.stringMatching(/^email_address \(a domain over text\) → n \(a domain over integer\)/) });
  });

  it("stops when a key's text form could change, since it names every contact", () => {
    expect(typeChange('key', int4, uuid)).toEqual({ ok: false, reason: "integer → uuid: the key's values, which name the contacts, would change" });
    expect(typeChange('key', text, int8)).toMatchObject({ ok: false }); // '007' would become 7
    expect(typeChange('key', uuid, text)).toEqual({ ok: true });
  });

  it('names the first way of reading the column that a change stops, by its config path', () => {
    const reads = [
      { path: 'fields.name', use: 'text' as const },
      { path: 'fields.email', use: 'email' as const },
    ];
    expect(typeChangeStops(reads, text, int4)).toBe('fields.email: text → integer: reads text (text, varchar, char, citext, an enum); json needs a path, not integer');
    expect(typeChangeStops(reads, text, citext)).toBeNull();
    // Never an oid in a message.
    expect(typeChangeStops(reads, text, int4)).not.toMatch(/\b(25|23)\b/);
  });
});
