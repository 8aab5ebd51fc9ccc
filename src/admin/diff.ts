import type { ContactPayload } from '../mapping/mapper.js';
import { canonicalJson } from '../outbox/json.js';

/** One field whose value differs between two payloads: `from` (what Wooxy holds) → `to` (what the row implies). */
export interface FieldChange {
  /** A contact field, or `variables.<name>` for a list variable. */
  field: string;
  /** Undefined: the field is absent on that side. */
  from: unknown;
  to: unknown;
}

/** A payload with its list variables spread into `variables.<name>` fields, so each compares on its own. */
function flatten(p: ContactPayload | null): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(p ?? {})) {
    if (k === 'variables' && Array.isArray(v)) {
      for (const item of v as Array<{ name?: unknown; value?: unknown }>) out.set(`variables.${String(item.name)}`, item.value);
    } else if (v !== undefined) out.set(k, v);
  }
  return out;
}

/**
 * The fields whose values differ, in field order; values compare as JSON whatever their key order (jsonb
 * reorders keys). Empty when the payloads say the same thing.
 */
export function payloadDiff(from: ContactPayload | null, to: ContactPayload | null): FieldChange[] {
  const a = flatten(from);
  const b = flatten(to);
  const fields = [...new Set([...a.keys(), ...b.keys()])].sort();
  return fields.filter((f) => canonicalJson(a.get(f)) !== canonicalJson(b.get(f))).map((f) => ({ field: f, from: a.get(f), to: b.get(f) }));
}

/** `firstName "Ada" → "Ada B."`, `lastName (none) → "B."`: a change as one short phrase. */
export function describeChange(c: FieldChange, max = 40): string {
  const show = (v: unknown) => {
    if (v === undefined) return '(none)';
    const text = JSON.stringify(v);
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  };
  return `${c.field} ${show(c.from)} → ${show(c.to)}`;
}
