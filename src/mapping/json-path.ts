import { asText, bad, ok, type Converted } from './converted.js';

/**
 * `{ column: prefs, path: language }`: a value inside a json or jsonb column. A path is dot-separated
 * (`settings.locale.language`; a number indexes an array: `phones.0`), or a list where a key holds a dot
 * (`[settings, "a.b"]`). A key the document lacks, or a JSON null, is NULL. The path must end at a value: an
 * object or array there is a problem, not its JSON text.
 */
export function parsePath(spec: string | ReadonlyArray<string | number>): string[] {
  return typeof spec === 'string' ? spec.split('.') : spec.map(String);
}

/**
 * json and jsonb arrive parsed (pg's type parsers, in the stream and in snapshot reads alike). A string is parsed
 * here: a column of a domain over jsonb comes as text in the stream, where pgoutput names the domain's own type.
 * A string that is not JSON is a JSON string scalar, in which no path leads anywhere.
 */
function document(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

export function readPath(v: unknown, path: readonly string[]): Converted {
  if (v === null || v === undefined) return ok(v);
  let at = document(v);
  for (const key of path) {
    if (Array.isArray(at)) at = /^\d+$/.test(key) ? at[Number(key)] : undefined;
    else if (typeof at === 'object' && at !== null) at = Object.prototype.hasOwnProperty.call(at, key) ? (at as Record<string, unknown>)[key] : undefined;
    else at = undefined;
    if (at === undefined || at === null) return ok(null);
  }
  if (typeof at === 'object' && at !== null) {
    return bad(`path ${path.join('.')} leads to ${Array.isArray(at) ? 'an array' : 'an object'}, not a value: ${truncate(asText(at))}`);
  }
  return ok(at);
}

const truncate = (s: string) => (s.length > 80 ? `${s.slice(0, 77)}...` : s);
