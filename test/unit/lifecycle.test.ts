import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/loader.js';
import { definitionChanges, fingerprintOf } from '../../src/lifecycle/fingerprint.js';
import { compileMapping } from '../../src/mapping/mapper.js';

const definition = (mapping: Record<string, unknown>) =>
  compileMapping(parseConfig({ postgres: { url: 'postgres://x' }, wooxy: { accessToken: 't' }, mappings: [{ table: 'users', contactListId: 'l', ...mapping }] }, {}).mappings[0]!).definition;

describe('mapping fingerprints', () => {
  const base = definition({ fields: { userId: 'id', email: 'email' }, filter: [{ column: 'status', notEquals: 'banned' }, { column: 'deleted_at', isNull: true }] });

  it('change exactly when what a contact receives may change: not for the list, upsert or the order of things', () => {
    expect(fingerprintOf(definition({ fields: { email: 'email', userId: 'id' }, filter: [{ column: 'deleted_at', isNull: true }, { column: 'status', notEquals: 'banned' }] }))).toBe(fingerprintOf(base));
    expect(fingerprintOf({ ...base, listId: 'other', upsert: true })).toBe(fingerprintOf(base));
    expect(fingerprintOf(definition({ fields: { userId: 'id', email: 'email', active: { value: true } }, filter: base.filter }))).not.toBe(fingerprintOf(base));
    expect(fingerprintOf(definition({ fields: { userId: 'id', email: { column: 'email', format: 'email' } }, filter: base.filter }))).not.toBe(fingerprintOf(base));
  });

  it('say what changed, in words, whatever order jsonb gave the stored keys', () => {
    const stored = JSON.parse(JSON.stringify({ ...base, table: { name: base.table.name, schema: base.table.schema } })) as typeof base;
    const next = definition({ fields: { userId: 'id', active: { value: true } }, variables: { plan: 'plan' }, filter: [] });
    expect(definitionChanges(stored, next)).toEqual(['fields.active added', 'fields.email removed', 'variables.plan added', 'filter changed']);
    expect(definitionChanges(stored, base)).toEqual(['the definition changed']);
  });
});
