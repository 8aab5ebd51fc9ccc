/**
 * What a conversion yields: a value, `undefined` (leave the field out), or a problem naming what is wrong.
 * `strict` marks a transform the mapping asked for (e164, email, a value map …): its problem is always reported,
 * since it names the value and the rule. A built-in conversion's problem (a boolean that is not one) is only a
 * fallback: the raw value goes to the vendor's check, whose own message is the better one.
 */
export type Converted = { ok: true; value: unknown } | { ok: false; problem: string; strict?: boolean };

export const ok = (value: unknown): Converted => ({ ok: true, value });
export const bad = (problem: string): Converted => ({ ok: false, problem, strict: true });
export const fallback = (problem: string): Converted => ({ ok: false, problem });

/** The text form of a decoded column value: what templates, maps and text fields see. */
export function asText(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

/** Empty and whitespace-only text are no value, as NULL is: a cleared form field must not become a bad row. */
export function blank(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === 'string' && v.trim() === '');
}
