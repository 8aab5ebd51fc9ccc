import type { FieldKind } from './contact-fields.js';

/**
 * Column value → Wooxy field value. Values arrive as pgoutput decodes them: text, numbers, booleans, bigint as
 * a string, timestamps as Date, and `date` columns as 'YYYY-MM-DD' text (see source/types.ts).
 * A conversion either gives a value, `undefined` (leave the field out), or a problem naming what is wrong.
 */
export type Converted = { ok: true; value: unknown } | { ok: false; problem: string };

export type Format = 'auto' | 'text' | 'boolean' | 'date' | 'number' | 'gender';

const TRUE = new Set(['t', 'true', 'y', 'yes', 'on', '1']);
const FALSE = new Set(['f', 'false', 'n', 'no', 'off', '0']);

/** The vendor's gender vocabulary (contacts/add page): ISO/IEC 5218 codes and their documented strings. */
const GENDER: Record<string, number> = {
  '': 0, unknown: 0, undefined: 0, empty: 0, '0': 0,
  m: 1, male: 1, '1': 1,
  f: 2, female: 2, '2': 2,
  'n/a': 9, 'not applicable': 9, na: 9, '9': 9,
};

const ok = (value: unknown): Converted => ({ ok: true, value });
const bad = (problem: string): Converted => ({ ok: false, problem });

export function asText(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

export function toBoolean(v: unknown): Converted {
  if (v === null || v === undefined) return ok(false); // the vendor's documented default
  if (typeof v === 'boolean') return ok(v);
  if (typeof v === 'number') return v === 1 || v === 0 ? ok(v === 1) : bad(`cannot read ${v} as a boolean`);
  const s = asText(v).trim().toLowerCase();
  if (TRUE.has(s)) return ok(true);
  if (FALSE.has(s)) return ok(false);
  return bad(`cannot read ${JSON.stringify(asText(v))} as a boolean`);
}

export function toDate(v: unknown): Converted {
  if (v === null || v === undefined) return ok(undefined);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? bad('invalid date') : ok(v.toISOString().slice(0, 10));
  const s = asText(v).trim();
  const m = /^(\d{4}-\d{2}-\d{2})/.exec(s);
  return m ? ok(m[1]) : bad(`cannot read ${JSON.stringify(s)} as a date`);
}

export function toNumber(v: unknown): Converted {
  if (v === null || v === undefined || v === '') return ok(undefined);
  const n = typeof v === 'number' ? v : Number(asText(v).trim());
  return Number.isFinite(n) ? ok(n) : bad(`cannot read ${JSON.stringify(asText(v))} as a number`);
}

export function toGender(v: unknown): Converted {
  if (v === null || v === undefined) return ok(undefined);
  const code = GENDER[asText(v).trim().toLowerCase()];
  return code === undefined ? bad('Unknown gender value') : ok(code);
}

/** Text: NULL clears the field (an empty string), so a cleared name reaches Wooxy too. */
export function toText(v: unknown): Converted {
  return ok(v === null || v === undefined ? '' : asText(v));
}

/** Identifiers, URLs and coded strings: NULL leaves the field out (an empty one would be invalid). */
export function toOptionalText(v: unknown): Converted {
  return ok(v === null || v === undefined ? undefined : asText(v));
}

export function convert(kind: FieldKind, format: Format, v: unknown): Converted {
  const f: Exclude<Format, 'auto'> = format !== 'auto' ? format : kind === 'identifier' || kind === 'url' || kind === 'code' || kind === 'text' ? 'text' : (kind);
  switch (f) {
    case 'boolean':
      return toBoolean(v);
    case 'date':
      return toDate(v);
    case 'number':
      return toNumber(v);
    case 'gender':
      return toGender(v);
    case 'text':
      return kind === 'text' ? toText(v) : toOptionalText(v);
  }
}
