import { describe, expect, it } from 'vitest';
import { callBody, planBatches } from '../../../src/delivery/batches.js';
import type { PendingEntry } from '../../../src/delivery/plan.js';
import { compileMapping } from '../../../src/mapping/mapper.js';
import { parseConfig } from '../../../src/config/loader.js';

const config = parseConfig(
  { postgres: { url: 'postgres://x' }, wooxy: { accessToken: 't' }, mappings: [{ table: 'users', contactListId: 'l', fields: { userId: 'id', email: 'email' } }] },
  {},
);
const mappers = new Map(config.mappings.map((m) => [m.name, compileMapping(m)]));
const entry = (key: string, payload: PendingEntry['payload'], synced: PendingEntry['synced'] = null): PendingEntry => ({
  mapping: 'users',
  key,
  payload,
  synced,
  maybeIds: null,
  maybeRemoved: false,
  hint: null,
  lsn: '0/1',
  attempts: 0,
});

describe('planBatches', () => {
  it('groups calls by operation, at most batchSize each, and sets aside what needs no call', () => {
    const entries = [
      ...Array.from({ length: 5 }, (_, i) => entry(`a${i}`, { userId: `a${i}` })),
      entry('u1', { userId: 'u1', email: 'new@example.com' }, { userId: 'u1', email: 'old@example.com' }),
      entry('r1', null, { userId: 'r1' }),
      entry('same', { userId: 'same' }, { userId: 'same' }),
      entry('gone', null, null),
    ];
    const plan = planBatches(entries, mappers, 2);
    expect(plan.batches.map((b) => [b.op, b.items.map((i) => i.entry.key)])).toEqual([
      ['add', ['a0', 'a1']],
      ['add', ['a2', 'a3']],
      ['add', ['a4']],
      ['update', ['u1']],
      ['remove', ['r1']],
    ]);
    expect(plan.skipped.map((e) => e.key)).toEqual(['same', 'gone']);
    expect(callBody(plan.batches[3]!)).toEqual({ op: 'update', upsert: false, contacts: [{ userId: 'u1', email: 'new@example.com', contact: 'u1' }] });
    expect(callBody(plan.batches[4]!)).toEqual({ op: 'remove', userIds: ['r1'] });
  });

  it('defers a contact that wants an identifier another one still holds and gives up', () => {
    const plan = planBatches(
      [entry('1', { userId: '1', email: 'x@example.com' }, { userId: '1', email: 'y@example.com' }), entry('2', { userId: '2', email: 'z@example.com' }, { userId: '2', email: 'x@example.com' })],
      mappers,
      100,
    );
    expect(plan.deferred.map((e) => e.key)).toEqual(['1']);
    expect(plan.batches.flatMap((b) => b.items.map((i) => i.entry.key))).toEqual(['2']);
  });
});
