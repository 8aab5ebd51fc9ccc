import type { FieldKind } from './contact-fields.js';
import { asText, fallback, ok, type Converted } from './converted.js';
import { toEmail } from './email.js';
import { toLanguage, toTimezone } from './locale.js';
import { toE164 } from './phone.js';

/**
 * Column value → Wooxy field value. Values arrive as pgoutput decodes them: text, numbers, booleans, bigint as
 * a string, timestamps with time zone as Date, `date` and `timestamp` columns as text, json and jsonb parsed
 * (see source/pg-types.ts). A conversion gives a value, `undefined` (leave the field out), or a problem.
 */
export const FORMATS = ['auto', 'text', 'boolean', 'date', 'number', 'gender', 'e164', 'email', 'language', 'timezone'] as const;
export type Format = (typeof FORMATS)[number];
export type Conversion = Exclude<Format, 'auto'>;

export interface ConversionOptions {
  /** e164: the country a national number ("030 1234567") belongs to, ISO 3166-1 alpha-2. */
  defaultCountry?: string;
  /** email: lowercase the local part too (it may change which contact an address names). */
  lowercaseLocalPart?: boolean;
}

const TRUE = new Set(['t', 'true', 'y', 'yes', 'on', '1']);
const FALSE = new Set(['f', 'false', 'n', 'no', 'off', '0']);

/** The vendor's gender vocabulary (contacts/add page): ISO/IEC 5218 codes and their documented strings. */
const GENDER: Record<string, number> = {
  '': 0, unknown: 0, undefined: 0, empty: 0, '0': 0,
  m: 1, male: 1, '1': 1,
  f: 2, female: 2, '2': 2,
  'n/a': 9, 'not applicable': 9, na: 9, '9': 9,
};

export function toBoolean(v: unknown): Converted {
  if (v === null || v === undefined) return ok(false); // the vendor's documented default
  if (typeof v === 'boolean') return ok(v);
  if (typeof v === 'number') return v === 1 || v === 0 ? ok(v === 1) : fallback(`cannot read ${v} as a boolean`);
  const s = asText(v).trim().toLowerCase();
  if (TRUE.has(s)) return ok(true);
  if (FALSE.has(s)) return ok(false);
  return fallback(`cannot read ${JSON.stringify(asText(v))} as a boolean`);
}

export function toDate(v: unknown): Converted {
  if (v === null || v === undefined) return ok(undefined);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? fallback('invalid date') : ok(v.toISOString().slice(0, 10));
  const s = asText(v).trim();
  const m = /^(\d{4}-\d{2}-\d{2})/.exec(s);
  return m ? ok(m[1]) : fallback(`cannot read ${JSON.stringify(s)} as a date`);
}

export function toNumber(v: unknown): Converted {
  if (v === null || v === undefined || v === '') return ok(undefined);
  const n = typeof v === 'number' ? v : Number(asText(v).trim());
  return Number.isFinite(n) ? ok(n) : fallback(`cannot read ${JSON.stringify(asText(v))} as a number`);
}

export function toGender(v: unknown): Converted {
  if (v === null || v === undefined) return ok(undefined);
  const code = GENDER[asText(v).trim().toLowerCase()];
  return code === undefined ? fallback('Unknown gender value') : ok(code);
}

/** Text: NULL clears the field (an empty string), so a cleared name reaches Wooxy too. */
export function toText(v: unknown): Converted {
  return ok(v === null || v === undefined ? '' : asText(v));
}

/** Identifiers, URLs and coded strings: NULL leaves the field out (an empty one would be invalid). */
export function toOptionalText(v: unknown): Converted {
  return ok(v === null || v === undefined ? undefined : asText(v));
}

/** What `auto` means for a field: the conversion its kind needs. Languages and zones get their own. */
export function effectiveFormat(kind: FieldKind, format: Format): Conversion {
  if (format !== 'auto') return format;
  switch (kind) {
    case 'identifier':
    case 'url':
    case 'code':
    case 'text':
      return 'text';
    default:
      return kind;
  }
}

export function convert(kind: FieldKind, conversion: Conversion, v: unknown, opts: ConversionOptions = {}): Converted {
  switch (conversion) {
    case 'boolean':
      return toBoolean(v);
    case 'date':
      return toDate(v);
    case 'number':
      return toNumber(v);
    case 'gender':
      return toGender(v);
    case 'e164':
      return toE164(v, opts.defaultCountry);
    case 'email':
      return toEmail(v, opts);
    case 'language':
      return toLanguage(v);
    case 'timezone':
      return toTimezone(v);
    case 'text':
      return kind === 'text' ? toText(v) : toOptionalText(v);
  }
}
