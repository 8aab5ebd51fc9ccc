import type { FilterCondition, MappingConfig } from '../config/schema.js';
import type { FieldSource } from '../config/sources.js';
import type { ColumnUse } from './column-types.js';
import { CONTACT_FIELDS, type ContactFieldName } from './contact-fields.js';
import { asText } from './converted.js';
import { DEFINITION_REVISION, canonicalFilter, sortedByName, type MappingDefinition } from './definition.js';
import { compileSource, type CompiledSource, type Evaluated } from './source.js';

/** A source row: column name → decoded value. `undefined` means "unchanged TOASTed value, not sent". */
export type Row = Record<string, unknown>;

/** The Wooxy contact a row implies: field → value, as sent to contacts/add (identifiers included). */
export type ContactPayload = Record<string, unknown>;

/** Checks a payload with the vendor's rules; returns the vendor's messages (empty when acceptable). */
export type ContactCheck = (contact: ContactPayload) => string[];

export type Projection = { ok: true; contact: ContactPayload } | { ok: false; problems: string[] };

export type { MappingDefinition } from './definition.js';

export interface Mapper {
  readonly name: string;
  readonly listId: string;
  readonly schema: string;
  readonly table: string;
  readonly key: string;
  readonly upsert: boolean;
  /** Every source column the mapping reads: key, fields (template parts included), variables, filter. */
  readonly columns: readonly string[];
  /** Where in the mapping's config each column is named (e.g. `fields.email`), for error messages. */
  readonly columnPaths: ReadonlyMap<string, readonly string[]>;
  /** How each column is read, by config path: what its type must allow (see column-types.ts). */
  readonly columnUses: ReadonlyMap<string, ReadonlyArray<{ path: string; use: ColumnUse }>>;
  /**
   * The mapping's effective definition — fields with their resolved formats and transforms, variables, filter,
   * key, list, upsert — canonical and JSON-serialisable: two configurations that project every row alike have
   * equal definitions, so a fingerprint of it changes exactly when the mapping does.
   */
  readonly definition: MappingDefinition;
  keyOf(row: Row): string | null;
  /** Whether the row belongs in the list (every filter condition holds). */
  matches(row: Row): boolean;
  /** The filter conditions the row fails, in the definition's order (none: it belongs in the list). */
  unmet(row: Row): FilterCondition[];
  /** Row → contact payload, checked with the vendor's rules. */
  project(row: Row): Projection;
}

/** A filter condition in words: `status notEquals "banned"`, `deleted_at isNull true`. */
export function describeCondition(c: FilterCondition): string {
  const [op, value] = Object.entries(c).find(([k, v]) => k !== 'column' && v !== undefined) ?? ['', ''];
  return `${c.column} ${op} ${JSON.stringify(value)}`;
}

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

interface Problems {
  /** A transform the mapping asked for failed: always reported, it names the value and the rule. */
  strict: string[];
  /** A built-in conversion failed: reported only when the vendor's rules find nothing to say. */
  fallback: string[];
}

/** Puts an evaluated source into the payload; a value that failed goes in as text for the vendor's check. */
function put(out: Record<string, unknown>, field: string, path: string, src: CompiledSource, r: Evaluated, problems: Problems): void {
  if (!r.known) return; // leave the field as Wooxy has it
  if (r.ok) {
    if (r.value !== undefined) out[field] = r.value;
    return;
  }
  (r.strict ? problems.strict : problems.fallback).push(`${path} (${src.label}): ${r.problem}`);
  out[field] = r.raw === null || r.raw === undefined ? '' : asText(r.raw);
}

export function compileMapping(config: MappingConfig, check: ContactCheck = () => []): Mapper {
  const country = config.defaultCountry;
  const fields: Array<[ContactFieldName, CompiledSource]> = [];
  let cac: { value: CompiledSource; currency: CompiledSource } | undefined;
  for (const [name, spec] of Object.entries(config.fields)) {
    if (name === 'cac') {
      const c = spec as { value: FieldSource; currency: FieldSource };
      cac = { value: compileSource(c.value, 'number', country), currency: compileSource(c.currency, 'code', country) };
    } else {
      fields.push([name as ContactFieldName, compileSource(spec as FieldSource, CONTACT_FIELDS[name as ContactFieldName], country)]);
    }
  }
  // A variable's value is a string: NULL clears it, as for a text field; a date variable is sent as YYYY-MM-DD.
  const variables = Object.entries(config.variables).map(([name, spec]) => {
    const type = typeof spec === 'object' && 'type' in spec ? spec.type : 'string';
    return { name, type, src: compileSource(spec, 'text', country, type === 'date' ? () => 'date' : undefined) };
  });

  const columnUses = new Map<string, Array<{ path: string; use: ColumnUse }>>();
  const use = (column: string, path: string, how: ColumnUse) => columnUses.set(column, [...(columnUses.get(column) ?? []), { path, use: how }]);
  use(config.key, 'key', 'key');
  for (const [f, s] of fields) for (const r of s.reads) use(r.column, `fields.${f}`, r.use);
  for (const v of variables) for (const r of v.src.reads) use(r.column, `variables.${v.name}`, r.use);
  if (cac) for (const part of ['value', 'currency'] as const) for (const r of cac[part].reads) use(r.column, `fields.cac.${part}`, r.use);
  config.filter.forEach((c, i) => use(c.column, `filter[${i}].column`, c.isNull !== undefined ? 'presence' : 'text'));
  const columnPaths = new Map([...columnUses].map(([c, uses]) => [c, uses.map((u) => u.path)]));

  const definition: MappingDefinition = {
    revision: DEFINITION_REVISION,
    table: { schema: config.schema, name: config.tableName },
    key: config.key,
    listId: config.contactListId,
    upsert: config.upsert,
    fields: sortedByName<MappingDefinition['fields'][string]>([
      ...fields.map(([f, s]) => [f, s.definition] as const),
      ...(cac ? [['cac', { value: cac.value.definition, currency: cac.currency.definition }] as const] : []),
    ]),
    variables: sortedByName(variables.map((v) => [v.name, { ...v.src.definition, type: v.type }] as const)),
    filter: canonicalFilter(config.filter),
  };

  return {
    name: config.name,
    listId: config.contactListId,
    schema: config.schema,
    table: config.tableName,
    key: config.key,
    upsert: config.upsert,
    columns: [...columnUses.keys()],
    columnPaths,
    columnUses,
    definition,
    keyOf(row) {
      const v = row[config.key];
      return v === null || v === undefined ? null : asText(v);
    },
    matches(row) {
      return config.filter.every((c) => holds(c, row));
    },
    unmet(row) {
      return definition.filter.filter((c) => !holds(c, row));
    },
    project(row) {
      const contact: ContactPayload = {};
      const problems: Problems = { strict: [], fallback: [] };
      for (const [field, s] of fields) put(contact, field, field, s, s.evaluate(row), problems);
      if (cac) {
        const parts: Record<string, unknown> = {};
        put(parts, 'value', 'cac.value', cac.value, cac.value.evaluate(row), problems);
        put(parts, 'currency', 'cac.currency', cac.currency, cac.currency.evaluate(row), problems);
        if (parts.value !== undefined && parts.currency !== undefined) contact.cac = { value: parts.value, currency: parts.currency };
      }
      if (variables.length > 0) {
        const vars: Array<{ name: string; value: string }> = [];
        for (const v of variables) {
          const r = v.src.evaluate(row);
          const one: Record<string, unknown> = {};
          put(one, 'value', `variables.${v.name}`, v.src, r, problems);
          // A string variable whose transform left nothing (NULL, blank) is cleared; a date one is left as it is.
          if (one.value === undefined && r.known && v.type === 'string') one.value = '';
          if (one.value !== undefined) vars.push({ name: v.name, value: one.value as string });
        }
        if (vars.length > 0) contact.variables = vars;
      }
      // A value that cannot be converted is passed on as text, so the vendor's own rule names the problem in
      // the vendor's words ("Argument birthday must be a YYYY-MM-DD date"); a transform's problem comes first,
      // since it names the value and the rule; a built-in conversion's is kept as a fallback.
      const vendor = check(contact);
      const all = [...problems.strict, ...vendor, ...(vendor.length === 0 ? problems.fallback : [])];
      return all.length > 0 ? { ok: false, problems: all } : { ok: true, contact };
    },
  };
}
