import { describe, expect, it } from 'vitest';
import { classifyGone, classifyRow, Tally, type Stored } from '../../src/snapshot/classify.js';

const ada = { userId: '1', email: 'ada@example.com', firstName: 'Ada' };
const renamed = { ...ada, firstName: 'Ada B.' };
const valid = (desired: Record<string, unknown> | null) => ({ ok: true as const, desired });
const invalid = { ok: false as const, message: 'phoneNumber (column phone): "12" is too short' };
const stored = (desired: Record<string, unknown> | null, synced: Record<string, unknown> | null, invalidBefore = false): Stored => ({ desired, synced, invalid: invalidBefore });
const OUT = 'filtered out (status equals "active")';

describe('previews: what a snapshot would do to a contact', () => {
  it('a new row is added; a row whose payload is stored already queues nothing, whatever is under way for it', () => {
    expect(classifyRow('snapshot', valid(ada), OUT, undefined)).toEqual({ change: 'add', queued: true, detail: 'userId 1, email ada@example.com' });
    expect(classifyRow('snapshot', valid(ada), OUT, stored(ada, ada))).toEqual({ change: 'unchanged', queued: false, detail: '' });
    // Stored already and not yet at Wooxy (a pending entry, a dead letter): the snapshot adds nothing to that.
    expect(classifyRow('snapshot', valid(renamed), OUT, stored(renamed, ada))).toMatchObject({ change: 'unchanged', queued: false });
  });

  it('a changed payload is queued and becomes what delivery makes of it against what Wooxy holds', () => {
    expect(classifyRow('snapshot', valid(renamed), OUT, stored(ada, ada))).toEqual({ change: 'update', queued: true, detail: 'firstName "Ada" → "Ada B."' });
    // Changed from the stored payload, but Wooxy holds it already (an earlier call of it went through): nothing to send.
    expect(classifyRow('snapshot', valid(renamed), OUT, stored(ada, renamed))).toEqual({ change: 'unchanged', queued: true, detail: '' });
    expect(classifyRow('snapshot', valid(null), OUT, stored(ada, ada))).toEqual({ change: 'remove', queued: true, detail: OUT });
    expect(classifyRow('snapshot', valid(null), OUT, stored(ada, null))).toEqual({ change: 'unchanged', queued: true, detail: `not in the list: ${OUT}` });
    // A filtered row never seen: no state, nothing to queue.
    expect(classifyRow('snapshot', valid(null), OUT, undefined)).toEqual({ change: 'unchanged', queued: false, detail: '' });
  });

  it('an invalid row is dead-lettered and queues nothing; valid again after a ROW_INVALID dead letter, it is queued even unchanged', () => {
    expect(classifyRow('snapshot', invalid, OUT, stored(ada, ada))).toEqual({ change: 'dead-letter', queued: false, detail: invalid.message });
    expect(classifyRow('snapshot', valid(ada), OUT, stored(ada, ada, true))).toEqual({ change: 'unchanged', queued: true, detail: '' });
    expect(classifyRow('snapshot', valid(ada), OUT, stored(ada, null, true))).toMatchObject({ change: 'add', queued: true });
  });
});

describe('previews: resync', () => {
  it('queues every contact that is or should be in the list, an unchanged one too; nothing for rows out of it', () => {
    expect(classifyRow('resync', valid(ada), OUT, stored(ada, ada))).toEqual({ change: 'unchanged', queued: true, detail: '' });
    expect(classifyRow('resync', valid(renamed), OUT, stored(renamed, ada))).toMatchObject({ change: 'update', queued: true });
    expect(classifyRow('resync', valid(null), OUT, stored(null, null))).toEqual({ change: 'unchanged', queued: false, detail: `not in the list: ${OUT}` });
    expect(classifyRow('resync', valid(null), OUT, stored(ada, ada))).toMatchObject({ change: 'remove', queued: true });
    // An invalid row: dead-lettered, and its last valid payload sent again.
    expect(classifyRow('resync', invalid, OUT, stored(ada, ada))).toEqual({ change: 'dead-letter', queued: true, detail: invalid.message });
    expect(classifyRow('resync', invalid, OUT, undefined)).toMatchObject({ change: 'dead-letter', queued: false });
  });
});

describe('previews: plan', () => {
  it('compares the payload under this configuration with what Wooxy holds, nothing else, and queues nothing', () => {
    const withLastName = { ...ada, lastName: 'Lovelace' };
    expect(classifyRow('plan', valid(withLastName), OUT, stored(ada, ada))).toEqual({ change: 'update', queued: false, detail: 'lastName (none) → "Lovelace"' });
    // The stored payload is the new one already, Wooxy's is not (delivery is behind): still an update.
    expect(classifyRow('plan', valid(withLastName), OUT, stored(withLastName, ada))).toMatchObject({ change: 'update' });
    expect(classifyRow('plan', valid(ada), OUT, stored(renamed, ada))).toMatchObject({ change: 'unchanged' });
    expect(classifyRow('plan', valid(null), OUT, stored(ada, ada))).toMatchObject({ change: 'remove', detail: OUT });
    expect(classifyRow('plan', valid(ada), OUT, undefined)).toMatchObject({ change: 'add' });
  });

  it('a mapping moved to another list: that list holds nothing yet, so every contact is an add and nothing is removed', () => {
    expect(classifyRow('plan', valid(ada), OUT, stored(ada, ada), true)).toMatchObject({ change: 'add' });
    expect(classifyRow('plan', valid(null), OUT, stored(ada, ada), true)).toMatchObject({ change: 'unchanged' });
    expect(classifyGone('plan', stored(ada, ada), true)).toBeNull();
  });
});

describe('previews: rows gone', () => {
  it('a contact Wooxy holds is removed; a reconciling snapshot also queues one Wooxy never got', () => {
    expect(classifyGone('plan', stored(ada, ada))).toEqual({ change: 'remove', queued: false, detail: 'no row' });
    expect(classifyGone('plan', stored(ada, null))).toBeNull();
    expect(classifyGone('snapshot', stored(ada, ada))).toEqual({ change: 'remove', queued: true, detail: 'no row' });
    expect(classifyGone('snapshot', stored(ada, null))).toEqual({ change: 'unchanged', queued: true, detail: 'not in the list: no row' });
    expect(classifyGone('snapshot', stored(null, null))).toBeNull();
  });
});

describe('previews: the tally', () => {
  it('counts everything and keeps the first few examples of each', () => {
    const t = new Tally(2);
    for (let i = 1; i <= 5; i++) t.add(String(i), { change: 'update', queued: true, detail: `d${i}` });
    t.add('9', { change: 'add', queued: false, detail: 'x' });
    expect(t.counts).toEqual({ add: 1, update: 5, remove: 0, unchanged: 0, 'dead-letter': 0 });
    expect(t.examples.update).toEqual([{ key: '1', detail: 'd1' }, { key: '2', detail: 'd2' }]);
    expect(t.queued).toBe(5);
  });
});
