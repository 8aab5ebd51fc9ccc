import type { FilterCondition } from '../config/schema.js';
import type { SourceDefinition } from './source.js';

/**
 * Raised when a conversion's output for the same input changes (a new rule in a transform, a different default),
 * so that a fingerprint of a definition changes with what the mapping would send.
 */
export const DEFINITION_REVISION = 1;

/** See Mapper.definition. Keys are in a fixed order and records sorted by name: JSON.stringify is canonical. */
export interface MappingDefinition {
  revision: number;
  table: { schema: string; name: string };
  key: string;
  listId: string;
  upsert: boolean;
  fields: Record<string, SourceDefinition | { value: SourceDefinition; currency: SourceDefinition }>;
  variables: Record<string, SourceDefinition & { type: 'string' | 'date' }>;
  filter: FilterCondition[];
}

export function sortedByName<T>(entries: ReadonlyArray<readonly [string, T]>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const CONDITION_KEYS = ['column', 'equals', 'notEquals', 'in', 'notIn', 'isNull'] as const;

/** Conditions all hold together, so their order means nothing: sorted, each with its keys in one order. */
export function canonicalFilter(filter: readonly FilterCondition[]): FilterCondition[] {
  const conditions = filter.map((c) => Object.fromEntries(CONDITION_KEYS.filter((k) => c[k] !== undefined).map((k) => [k, c[k]])) as FilterCondition);
  return conditions.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0));
}
