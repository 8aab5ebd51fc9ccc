import { z } from 'zod';
import { FORMATS } from '../mapping/convert.js';
import { isPhoneCountry } from '../mapping/phone.js';
import { parseTemplate } from '../mapping/template.js';

/**
 * Where a contact field's (or a list variable's) value comes from — a column, a path inside a json column, a
 * template over several columns, or a constant — and the transforms applied to it: a value map, then a format.
 * Each shape is validated on its own, chosen by its key (`column`, `template`, `value`), so a mistake is named
 * by its path (`fields.phoneNumber.defaultCountry: …`) rather than as "matches none of the shapes".
 */

export const columnName = z
  .string({ error: 'expected a column name' })
  .min(1, { error: 'expected a column name' })
  .max(63, { error: 'a Postgres column name has at most 63 bytes' });

export const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export type Scalar = z.infer<typeof scalar>;

const boolish = (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v);

export const countryCode = z
  .string({ error: 'expected an ISO 3166-1 alpha-2 country code such as DE' })
  .regex(/^[A-Z]{2}$/, { error: 'expected an ISO 3166-1 alpha-2 country code in capitals, such as DE', abort: true })
  .refine(isPhoneCountry, { error: 'libphonenumber-js has no numbering plan for this country code' });

const path = z
  .union([z.string().regex(/^[^.]+(\.[^.]+)*$/, { error: 'expected keys separated by dots, e.g. settings.language' }), z.array(z.union([z.string().min(1), z.number().int().min(0)])).min(1)], {
    error: 'expected a key path such as settings.language, or a list of keys',
  })
  .describe('json or jsonb column: the key path to the value, e.g. settings.language (a list where a key holds a dot)');

const transforms = {
  map: z
    .record(z.string(), scalar)
    .optional()
    .describe('value map, e.g. {gold: vip, silver: regular}: a value is looked up by its text, trimmed'),
  default: scalar.optional().describe('map: what a value the map does not name becomes; without it such a row is a dead letter'),
  format: z
    .enum(FORMATS)
    .default('auto')
    .describe(
      'conversion: auto picks from the Wooxy field; text, boolean, date, number, gender; e164 (phone numbers), email (trims, lowercases and punycodes the domain), language (ISO 639-1), timezone (IANA name)',
    ),
  defaultCountry: countryCode.optional().describe("format e164: the country of national numbers (030 1234567); default: the mapping's defaultCountry"),
  lowercaseLocalPart: z
    .preprocess(boolish, z.boolean({ error: 'expected true or false' }))
    .optional()
    .describe('format email: lowercase the part before @ as well (default false: it can change which contact an address names)'),
};

interface TransformInput {
  format?: string;
  map?: unknown;
  default?: unknown;
  defaultCountry?: unknown;
  lowercaseLocalPart?: unknown;
  template?: string;
}

function transformRules(s: TransformInput, ctx: z.RefinementCtx): void {
  if ('default' in s && s.map === undefined) ctx.addIssue({ code: 'custom', path: ['default'], message: 'default applies to a value map; add map: or remove default' });
  if (s.defaultCountry !== undefined && s.format !== 'e164') ctx.addIssue({ code: 'custom', path: ['defaultCountry'], message: 'defaultCountry applies to format: e164' });
  if (s.lowercaseLocalPart !== undefined && s.format !== 'email') ctx.addIssue({ code: 'custom', path: ['lowercaseLocalPart'], message: 'lowercaseLocalPart applies to format: email' });
  if (s.template !== undefined) {
    const t = parseTemplate(s.template);
    if ('error' in t) ctx.addIssue({ code: 'custom', path: ['template'], message: t.error });
  }
}

const columnShape = { column: columnName.describe('source column'), path: path.optional(), ...transforms };
const templateShape = {
  template: z.string({ error: 'expected a text with {column} placeholders' }).describe('text with {column} placeholders, e.g. "{first_name} {last_name}"; missing parts drop out cleanly'),
  ...transforms,
};

const columnSource = z.strictObject(columnShape).superRefine(transformRules);
const templateSource = z.strictObject(templateShape).superRefine(transformRules);
const valueSource = z.strictObject({ value: scalar.describe('a constant sent for every contact') });

export type Format = (typeof FORMATS)[number];
interface Transforms {
  map?: Record<string, Scalar>;
  default?: Scalar;
  format: Format;
  defaultCountry?: string;
  lowercaseLocalPart?: boolean;
}
export type ColumnSource = { column: string; path?: string | Array<string | number> } & Transforms;
export type TemplateSource = { template: string } & Transforms;
export type FieldSource = string | ColumnSource | TemplateSource | { value: Scalar };
export type VariableSource = string | ((ColumnSource | TemplateSource) & { type: 'string' | 'date' }) | { value: string };

const variableType = z.enum(['string', 'date']).default('string').describe('date variables are sent as YYYY-MM-DD');
const variableFormat = z
  .enum(['auto', 'text', 'e164', 'email', 'language', 'timezone'])
  .default('auto')
  .describe("a variable's value is text: auto (text; date for type: date), text, e164, email, language or timezone");

function variableRules(s: { type?: string; format?: string }, ctx: z.RefinementCtx): void {
  if (s.type === 'date' && s.format !== undefined && s.format !== 'auto') ctx.addIssue({ code: 'custom', path: ['format'], message: 'a date variable takes no format' });
}

const variableColumn = z
  .strictObject({ ...columnShape, format: variableFormat, type: variableType })
  .superRefine(transformRules)
  .superRefine(variableRules);
const variableTemplate = z
  .strictObject({ ...templateShape, format: variableFormat, type: variableType })
  .superRefine(transformRules)
  .superRefine(variableRules);
const variableValue = z.strictObject({ value: z.string({ error: 'a variable constant is a string' }) });

type Branches = { string: z.ZodType; column: z.ZodType; template: z.ZodType; value: z.ZodType };

/** The schema a value is checked against, chosen by its shape; undefined when it has none of them. */
function branch(raw: unknown, b: Branches): z.ZodType | undefined {
  if (typeof raw === 'string') return b.string;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  if ('template' in raw) return b.template;
  if ('column' in raw) return b.column;
  if ('value' in raw) return b.value;
  return undefined;
}

function dispatching<T>(b: Branches, error: string, doc: z.ZodType) {
  return z
    .unknown()
    .transform((raw, ctx): T => {
      const schema = branch(raw, b);
      if (!schema) {
        ctx.addIssue({ code: 'custom', message: error });
        return z.NEVER;
      }
      const parsed = schema.safeParse(raw);
      if (parsed.success) return parsed.data as T;
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue });
      return z.NEVER;
    })
    .meta({ shape: z.toJSONSchema(doc, { io: 'input', unrepresentable: 'any' }) });
}

export const FIELD_SOURCE_ERROR = 'expected a column name, {column: NAME}, {template: TEXT} or {value: CONSTANT}';

export const fieldSourceSchema = dispatching<FieldSource>(
  { string: columnName, column: columnSource, template: templateSource, value: valueSource },
  FIELD_SOURCE_ERROR,
  z.union([columnName, z.strictObject(columnShape), z.strictObject(templateShape), valueSource]),
);

export const variableSourceSchema = dispatching<VariableSource>(
  { string: columnName, column: variableColumn, template: variableTemplate, value: variableValue },
  'expected a column name, {column: NAME, type: string|date}, {template: TEXT} or {value: CONSTANT}',
  // Documented by what differs from a field's source; the rest is "as for fields".
  z.strictObject({ format: variableFormat, type: variableType }),
);

/** Whether a parsed source converts with format e164 (the mapping's defaultCountry is for those). */
export function usesE164(source: unknown): boolean {
  return typeof source === 'object' && source !== null && (source as { format?: unknown }).format === 'e164';
}
