import type { FieldSource, Scalar, VariableSource } from '../config/sources.js';
import type { ColumnUse } from './column-types.js';
import type { FieldKind } from './contact-fields.js';
import { convert, effectiveFormat, type Conversion, type ConversionOptions } from './convert.js';
import { ok, type Converted } from './converted.js';
import { parsePath, readPath } from './json-path.js';
import { parseTemplate, renderTemplate, type Template } from './template.js';
import { applyMap, type ValueMap } from './value-map.js';

/**
 * One source compiled: where its value comes from (a column, a path inside one, a template, a constant), its
 * value map, its conversion. The stream, the snapshot and every later reader of rows (the demo's comparison,
 * and `inspect`, `plan` and the dry runs to come) project through these, so a transform is applied the same
 * way whichever path a row takes.
 */

/** The effective definition of a source, canonical and JSON-serialisable: equal definitions, equal output. */
export interface SourceDefinition {
  column?: string;
  path?: string[];
  template?: string;
  value?: Scalar;
  map?: Record<string, Scalar>;
  default?: Scalar;
  format: Conversion;
  defaultCountry?: string;
  lowercaseLocalPart?: true;
}

/** A source over a row: unknown (a column the stream did not resend), or a conversion's outcome. */
export type Evaluated = { known: false } | ({ known: true; raw: unknown } & Converted);

export interface ColumnRead {
  column: string;
  use: ColumnUse;
}

export interface CompiledSource {
  readonly definition: SourceDefinition;
  /** How a problem names the source: `column phone`, `template "{first} {last}"`, `constant`. */
  readonly label: string;
  readonly reads: readonly ColumnRead[];
  evaluate(row: Readonly<Record<string, unknown>>): Evaluated;
}

type Input = { column: string; path?: string[] } | { template: Template } | { constant: Scalar };

/** How a conversion reads its column's values, for the type checks in column-types.ts. */
function useOf(kind: FieldKind, conversion: Conversion): ColumnUse {
  switch (conversion) {
    case 'text':
      return kind === 'code' || kind === 'language' || kind === 'timezone' ? 'code' : 'text';
    case 'e164':
      return 'phone';
    case 'language':
    case 'timezone':
      return 'code';
    default:
      return conversion;
  }
}

const sortedRecord = <T>(r: Readonly<Record<string, T>>): Record<string, T> =>
  Object.fromEntries(Object.keys(r).sort().map((k) => [k, r[k]!]));

export function compileSource(spec: FieldSource | VariableSource, kind: FieldKind, mappingDefaultCountry?: string, conversionFor?: (c: Conversion) => Conversion): CompiledSource {
  const long = typeof spec === 'string' ? { column: spec, format: 'auto' as const } : spec;
  let input: Input;
  if ('value' in long) input = { constant: long.value };
  else if ('template' in long) input = { template: parseTemplate(long.template) as Template };
  else input = long.path === undefined ? { column: long.column } : { column: long.column, path: parsePath(long.path) };
  const t = 'value' in long ? undefined : long;
  const conversion = (conversionFor ?? ((c) => c))(effectiveFormat(kind, t?.format ?? 'auto'));
  const opts: ConversionOptions = {};
  if (conversion === 'e164') {
    const country = t?.defaultCountry ?? mappingDefaultCountry;
    if (country) opts.defaultCountry = country;
  }
  if (conversion === 'email' && t?.lowercaseLocalPart) opts.lowercaseLocalPart = true;
  const map: ValueMap | undefined = t?.map ? { entries: sortedRecord(t.map), ...('default' in t ? { default: t.default ?? null } : {}) } : undefined;

  const definition: SourceDefinition = {
    ...('column' in input ? { column: input.column, ...(input.path ? { path: input.path } : {}) } : {}),
    ...('template' in input ? { template: input.template.source } : {}),
    ...('constant' in input ? { value: input.constant } : {}),
    ...(map ? { map: map.entries, ...('default' in map ? { default: map.default } : {}) } : {}),
    format: conversion,
    ...(opts.defaultCountry ? { defaultCountry: opts.defaultCountry } : {}),
    ...(opts.lowercaseLocalPart ? { lowercaseLocalPart: true as const } : {}),
  };

  // A value that is matched (map) or assembled (template) is read as text, whatever the conversion after it.
  const direct: ColumnUse = map ? 'text' : useOf(kind, conversion);
  const reads: ColumnRead[] =
    'template' in input
      ? input.template.columns.map((column) => ({ column, use: 'text' as const }))
      : 'column' in input
        ? [{ column: input.column, use: input.path ? 'json' : direct }]
        : [];
  const label =
    'template' in input
      ? `template ${JSON.stringify(input.template.source)}`
      : 'column' in input
        ? `column ${input.column}${input.path ? `, path ${input.path.join('.')}` : ''}`
        : 'constant';

  const read = (row: Readonly<Record<string, unknown>>): Evaluated => {
    if ('constant' in input) return { known: true, raw: input.constant, ok: true, value: input.constant };
    if ('template' in input) {
      const text = renderTemplate(input.template, row);
      return text === undefined ? { known: false } : { known: true, raw: text, ok: true, value: text };
    }
    const raw = row[input.column];
    // Unknown: an unchanged TOASTed value never seen before, or a column not yet published (see relations.ts).
    if (raw === undefined) return { known: false };
    if (!input.path) return { known: true, raw, ok: true, value: raw };
    return { known: true, raw, ...readPath(raw, input.path) };
  };

  return {
    definition,
    label,
    reads,
    evaluate(row) {
      const r = read(row);
      if (!r.known || !r.ok) return r;
      const mapped: Converted = map ? applyMap(r.value, map) : ok(r.value);
      if (!mapped.ok) return { known: true, raw: r.value, ...mapped };
      return { known: true, raw: mapped.value, ...convert(kind, conversion, mapped.value, opts) };
    },
  };
}
