import { createHash } from 'node:crypto';
import type { MappingDefinition } from '../mapping/definition.js';

/**
 * What of a mapping's definition decides the payloads it sends: everything but the list (a list change is
 * handled apart: the contacts go to the new list) and `upsert` (how an update is sent, not what).
 */
function payloadPart(d: MappingDefinition): Omit<MappingDefinition, 'listId' | 'upsert'> {
  const { listId: _list, upsert: _upsert, ...rest } = d;
  return rest;
}

/** A stable fingerprint of what a mapping sends: it changes exactly when some contact's payload may. */
export function fingerprintOf(d: MappingDefinition): string {
  return createHash('sha256').update(JSON.stringify(payloadPart(d))).digest('hex').slice(0, 32);
}

/** JSON with every object's keys sorted: a definition read back from jsonb has its keys in jsonb's own order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** What changed between two definitions, in words an operator reads: "fields.active added", "filter changed". */
export function definitionChanges(before: Partial<MappingDefinition>, after: MappingDefinition): string[] {
  const out: string[] = [];
  if (!same(before.table, after.table)) out.push(`table ${before.table ? `${before.table.schema}.${before.table.name} → ` : ''}${after.table.schema}.${after.table.name}`);
  if (before.key !== after.key) out.push(`key ${before.key ?? '?'} → ${after.key}`);
  for (const section of ['fields', 'variables'] as const) {
    const a = (before[section] ?? {}) as Record<string, unknown>;
    const b = after[section] as Record<string, unknown>;
    for (const name of Object.keys(b)) {
      if (!(name in a)) out.push(`${section}.${name} added`);
      else if (!same(a[name], b[name])) out.push(`${section}.${name} changed`);
    }
    for (const name of Object.keys(a)) if (!(name in b)) out.push(`${section}.${name} removed`);
  }
  if (!same(before.filter ?? [], after.filter)) out.push('filter changed');
  if (before.revision !== undefined && before.revision !== after.revision) out.push(`the conversions changed (revision ${before.revision} → ${after.revision})`);
  return out.length > 0 ? out : ['the definition changed'];
}
