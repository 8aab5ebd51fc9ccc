import type { FieldSource, FilterCondition, MappingConfig } from '../config/schema.js';
import { CONTACT_FIELDS, type ContactFieldName } from './contact-fields.js';
import { asText, convert, toDate, toNumber, toOptionalText, type Converted, type Format } from './convert.js';

/** A source row: column name → decoded value. `undefined` means "unchanged TOASTed value, not sent". */
export type Row = Record<string, unknown>;

/** The Wooxy contact a row implies: field → value, as sent to contacts/add (identifiers included). */
export type ContactPayload = Record<string, unknown>;

/** Checks a payload with the vendor's rules; returns the vendor's messages (empty when acceptable). */
export type ContactCheck = (contact: ContactPayload) => string[];

export type Projection = { ok: true; contact: ContactPayload } | { ok: false; problems: string[] };

export interface Mapper {
  readonly name: string;
  readonly listId: string;
  readonly schema: string;
  readonly table: string;
  readonly key: string;
  readonly upsert: boolean;
  /** Every source column the mapping reads: key, fields, variables, filter. */
  readonly columns: readonly string[];
  /** Where in the mapping's config each column is named (e.g. `fields.email`), for error messages. */
  readonly columnPaths: ReadonlyMap<string, readonly string[]>;
  keyOf(row: Row): string | null;
  /** Whether the row belongs in the list (every filter condition holds). */
  matches(row: Row): boolean;
  /** Row → contact payload, checked with the vendor's rules. */
  project(row: Row): Projection;
}

type Source = { column: string; format: Format } | { constant: unknown };

function source(spec: FieldSource): Source {
  if (typeof spec === 'string') return { column: spec, format: 'auto' };
  if ('column' in spec) return { column: spec.column, format: spec.format };
  return { constant: spec.value };
}

const read = (row: Row, s: Source): unknown => ('constant' in s ? s.constant : row[s.column]);
const label = (s: Source): string => ('constant' in s ? 'constant' : `column ${s.column}`);

/** Comparable text form of a value for filters: booleans and Postgres' 't'/'f' agree. */
function norm(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v === true || v === 't') return 'true';
  if (v === false || v === 'f') return 'false';
  return asText(v);
}

function holds(c: FilterCondition, row: Row): boolean {
  const v = norm(row[c.column]);
  if (c.isNull !== undefined) return (v === null) === c.isNull;
  if (c.equals !== undefined) return c.equals === null ? v === null : v === norm(c.equals);
  if (c.notEquals !== undefined) return c.notEquals === null ? v !== null : v !== norm(c.notEquals);
  if (c.in) return c.in.some((x) => norm(x) === v);
  if (c.notIn) return !c.notIn.some((x) => norm(x) === v);
  return true;
}

export function compileMapping(config: MappingConfig, check: ContactCheck = () => []): Mapper {
  const fields: Array<[ContactFieldName, Source]> = [];
  let cac: { value: Source; currency: Source } | undefined;
  for (const [name, spec] of Object.entries(config.fields)) {
    if (name === 'cac') {
      const c = spec as { value: FieldSource; currency: FieldSource };
      cac = { value: source(c.value), currency: source(c.currency) };
    } else {
      fields.push([name as ContactFieldName, source(spec as FieldSource)]);
    }
  }
  const variables = Object.entries(config.variables).map(([name, spec]): { name: string; src: Source; type: 'string' | 'date' } => {
    if (typeof spec === 'string') return { name, src: { column: spec, format: 'text' }, type: 'string' };
    if ('column' in spec) return { name, src: { column: spec.column, format: 'text' }, type: spec.type };
    return { name, src: { constant: spec.value }, type: 'string' };
  });

  const columnPaths = new Map<string, string[]>();
  const use = (column: string, path: string) => columnPaths.set(column, [...(columnPaths.get(column) ?? []), path]);
  use(config.key, 'key');
  for (const [f, s] of fields) if ('column' in s) use(s.column, `fields.${f}`);
  for (const v of variables) if ('column' in v.src) use(v.src.column, `variables.${v.name}`);
  if (cac) for (const [part, s] of [['value', cac.value], ['currency', cac.currency]] as const) if ('column' in s) use(s.column, `fields.cac.${part}`);
  config.filter.forEach((c, i) => use(c.column, `filter[${i}].column`));
  const columns = new Set<string>(columnPaths.keys());

  return {
    name: config.name,
    listId: config.contactListId,
    schema: config.schema,
    table: config.tableName,
    key: config.key,
    upsert: config.upsert,
    columns: [...columns],
    columnPaths,
    keyOf(row) {
      const v = row[config.key];
      return v === null || v === undefined ? null : asText(v);
    },
    matches(row) {
      return config.filter.every((c) => holds(c, row));
    },
    project(row) {
      const contact: ContactPayload = {};
      const problems: string[] = [];
      // A value that cannot be converted is passed on as text, so the vendor's own rule names the problem in
      // the vendor's words ("Argument birthday must be a YYYY-MM-DD date"); ours is kept as a fallback.
      const unconvertible: string[] = [];
      const put = (field: string, s: Source, r: Converted, raw: unknown) => {
        if (r.ok) {
          if (r.value !== undefined) contact[field] = r.value;
          return;
        }
        unconvertible.push(`${field} (${label(s)}): ${r.problem}`);
        contact[field] = asText(raw);
      };
      for (const [field, s] of fields) {
        const raw = read(row, s);
        // Unknown (an unchanged TOASTed value never seen before): leave the field as Wooxy has it.
        if (raw === undefined && 'column' in s) continue;
        put(field, s, convert(CONTACT_FIELDS[field], 'constant' in s ? 'auto' : s.format, raw), raw);
      }
      if (cac) {
        const value = toNumber(read(row, cac.value));
        const currency = toOptionalText(read(row, cac.currency));
        const rawValue = read(row, cac.value);
        if (!value.ok) unconvertible.push(`cac.value (${label(cac.value)}): ${value.problem}`);
        const v = value.ok ? value.value : asText(rawValue);
        if (v !== undefined && currency.ok && currency.value !== undefined) contact.cac = { value: v, currency: currency.value };
      }
      if (variables.length > 0) {
        const vars: Array<{ name: string; value: string }> = [];
        for (const v of variables) {
          const raw = read(row, v.src);
          if (raw === undefined && 'column' in v.src) continue;
          const r = v.type === 'date' ? toDate(raw) : raw === null || raw === undefined ? { ok: true as const, value: '' } : { ok: true as const, value: asText(raw) };
          if (!r.ok) {
            unconvertible.push(`variables.${v.name} (${label(v.src)}): ${r.problem}`);
            vars.push({ name: v.name, value: asText(raw) });
          } else if (r.value !== undefined) vars.push({ name: v.name, value: r.value as string });
        }
        if (vars.length > 0) contact.variables = vars;
      }
      if (problems.length === 0) {
        const vendor = check(contact);
        problems.push(...vendor);
        if (vendor.length === 0) problems.push(...unconvertible);
      }
      return problems.length > 0 ? { ok: false, problems } : { ok: true, contact };
    },
  };
}
