/**
 * Which Postgres column types each way of reading a column can take, and which type changes leave a mapping
 * able to go on. Pure: the caller reads the type descriptions from pg_type (src/source/type-descriptions.ts),
 * e.g. for `validate-config --online`, and for the stream when a Relation message shows a new type.
 *
 * Types are judged by what the connector receives: pgoutput and pg send every value as text, and pg's parsers
 * turn a few types into numbers, booleans, Dates or parsed JSON (src/source/pg-types.ts). A domain is judged by
 * its base type. Messages name types the way Postgres prints them (`text → integer`), never by oid.
 */

/** How the mapping reads a column (see source.ts): the conversion, or what a key, a filter or a map needs. */
export type ColumnUse =
  /** a text field, an identifier, a URL, a string variable, a template part, a value map's input, a filter's comparison */
  | 'text'
  /** a coded string: contactLanguage, contactTimezone, sourceId, customerSourceId, cac.currency */
  | 'code'
  | 'email'
  | 'phone'
  | 'boolean'
  | 'date'
  | 'number'
  | 'gender'
  /** a json path: the column must hold a JSON document */
  | 'json'
  /** the mapping's key: its text form is the contact's identity in the outbox */
  | 'key'
  /** a filter's isNull: any type has a NULL */
  | 'presence';

/** One pg_type row, as type-descriptions.ts reads it. */
export interface PgType {
  oid: number;
  /** `typname`: int4, varchar, timestamptz, citext, a domain's or an enum's own name. */
  typname: string;
  /** format_type(oid, NULL): the name Postgres prints, without a typmod — integer, character varying. */
  name: string;
  /** `typcategory`: S string, N numeric, B boolean, D date/time, E enum, U user-defined, A array, … */
  category: string;
  /** A domain's base type, resolved through domains over domains; null for a type that is not a domain. */
  base: PgType | null;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

/** The type values actually have: a domain's base, else the type itself. */
const underlying = (t: PgType): PgType => t.base ?? t;

const JSON_TYPES = new Set(['json', 'jsonb']);
const DATE_TYPES = new Set(['date', 'timestamp', 'timestamptz']);
const INTEGER_TYPES = new Set(['int2', 'int4', 'int8']);
/** Numbers whose text form is a number; money prints a currency sign, so it is not one. */
const isNumeric = (t: PgType) => t.category === 'N' && t.typname !== 'money';
const isString = (t: PgType) => t.category === 'S' || t.category === 'E';
/** Types whose values have a text form a person would write into a field (not arrays, records, JSON, bytes). */
function isTextual(t: PgType): boolean {
  if (JSON_TYPES.has(t.typname) || t.typname === 'bytea') return false;
  return ['S', 'E', 'N', 'D', 'T', 'B', 'I', 'V'].includes(t.category) || t.typname === 'uuid';
}

const ACCEPTS: Record<ColumnUse, { test: (t: PgType) => boolean; wants: string }> = {
  text: { test: isTextual, wants: 'a value with a text form (text, numbers, dates, booleans, uuid, enums); json needs a path' },
  code: { test: isString, wants: 'text (text, varchar, char, citext, an enum); json needs a path' },
  email: { test: isString, wants: 'text (text, varchar, char, citext, an enum); json needs a path' },
  phone: { test: (t) => isString(t) || INTEGER_TYPES.has(t.typname) || t.typname === 'numeric', wants: 'text or an integer; json needs a path' },
  boolean: { test: (t) => t.category === 'B' || isString(t) || INTEGER_TYPES.has(t.typname), wants: "boolean, text ('t', 'yes', …) or an integer (0/1)" },
  date: { test: (t) => DATE_TYPES.has(t.typname) || isString(t), wants: 'date, timestamp, timestamptz or text (YYYY-MM-DD…)' },
  number: { test: (t) => isNumeric(t) || isString(t), wants: 'a number type, or text holding numbers' },
  gender: { test: (t) => isString(t) || INTEGER_TYPES.has(t.typname), wants: 'text (m, female, …) or an integer code (0, 1, 2, 9)' },
  json: { test: (t) => JSON_TYPES.has(t.typname), wants: 'json or jsonb' },
  key: { test: (t) => isString(t) || INTEGER_TYPES.has(t.typname) || t.typname === 'numeric' || t.typname === 'uuid', wants: 'text, an integer, numeric or uuid' },
  presence: { test: () => true, wants: 'any type' },
};

/** (a) Can this use read a column of this type? */
export function canRead(use: ColumnUse, type: PgType): Verdict {
  const { test, wants } = ACCEPTS[use];
  return test(underlying(type)) ? { ok: true } : { ok: false, reason: `reads ${wants}, not ${describeType(type)}` };
}

/** Groups within which a key's text form survives a type change: '42' as int4 is '42' as int8 or numeric. */
function keyFamily(t: PgType): string {
  if (INTEGER_TYPES.has(t.typname) || t.typname === 'numeric') return 'number';
  if (isString(t)) return 'string';
  return t.typname;
}

/**
 * (b) Does a type change from `from` to `to` stop a mapping that reads the column this way? Not while the
 * conversion can read the new type: text ↔ varchar(n) ↔ char ↔ citext, int2 → int4 → int8, numeric's precision,
 * timestamp ↔ timestamptz, a domain over the same base type. A key stops when its text form could change (an
 * integer becoming a uuid), since that form names every contact in the outbox; becoming text keeps it.
 */
export function typeChange(use: ColumnUse, from: PgType, to: PgType): Verdict {
  const change = `${describeType(from)} → ${describeType(to)}`;
  const read = canRead(use, to);
  if (!read.ok) return { ok: false, reason: `${change}: ${read.reason}` };
  if (use === 'key') {
    const a = keyFamily(underlying(from));
    const b = keyFamily(underlying(to));
    if (a !== b && b !== 'string') return { ok: false, reason: `${change}: the key's values, which name the contacts, would change` };
  }
  return { ok: true };
}

/** The first way of reading a column that a type change stops, as a reason naming it (`fields.email: text → integer …`). */
export function typeChangeStops(reads: ReadonlyArray<{ path: string; use: ColumnUse }>, from: PgType, to: PgType): string | null {
  for (const r of reads) {
    const v = typeChange(r.use, from, to);
    if (!v.ok) return `${r.path}: ${v.reason}`;
  }
  return null;
}

export function describeType(t: PgType): string {
  return t.base ? `${t.name} (a domain over ${t.base.name})` : t.name;
}
