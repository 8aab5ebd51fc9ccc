import { asText, bad, ok, type Converted } from './converted.js';

export type Scalar = string | number | boolean | null;

export interface ValueMap {
  readonly entries: Readonly<Record<string, Scalar>>;
  /** Present (null included) when an unmapped value takes it; absent when an unmapped value is a problem. */
  readonly default?: Scalar;
}

/**
 * `{ column: tier, map: { gold: vip, silver: regular }, default: standard }`. A value is looked up by its text
 * form, trimmed (char(n) pads with spaces; booleans read "true"/"false"), case as written. NULL stays NULL —
 * the field's own NULL rule applies — so `default` is for values the map does not name, not for missing ones.
 */
export function applyMap(v: unknown, map: ValueMap): Converted {
  if (v === null || v === undefined) return ok(v);
  const key = asText(v).trim();
  if (Object.prototype.hasOwnProperty.call(map.entries, key)) return ok(map.entries[key]);
  if ('default' in map) return ok(map.default);
  const known = Object.keys(map.entries);
  return bad(`${JSON.stringify(key)} is not in the value map (${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}) and there is no default`);
}
