import { describe, expect, it } from 'vitest';
import { planTable, tableSpec, wantedColumns, type TableFacts } from '../../../src/source/column-lists.js';
import { generatedColumnPublished } from '../../../src/source/setup.js';

const users: TableFacts = { qualified: '"public"."users"', identity: ['id'] };

describe('which columns a publication carries', () => {
  it('lists what the mappings read and the replica identity, on PostgreSQL 15 and later', () => {
    expect(wantedColumns(['email', 'first_name'], users, 150004, 'mapped')).toEqual({ list: ['email', 'first_name', 'id'] });
    expect(wantedColumns(['email'], { ...users, identity: ['tenant', 'id'] }, 170000, 'mapped')).toEqual({ list: ['email', 'id', 'tenant'] });
  });

  it('publishes every column, saying why, where a list cannot be', () => {
    expect(wantedColumns(['email'], users, 140010, 'mapped')).toEqual({ list: null, why: 'PostgreSQL before 15 has no publication column lists' });
    expect(wantedColumns(['email'], { ...users, identity: 'full' }, 150004, 'mapped')).toMatchObject({ list: null, why: expect.stringMatching(/REPLICA IDENTITY FULL/) });
    expect(wantedColumns(['email'], users, 150004, 'all')).toEqual({ list: null, why: null });
  });

  it('plans the change: add, replace (keeping a row filter, naming what is missing), or nothing', () => {
    const wanted = { list: ['email', 'id'] };
    expect(planTable('p', users.qualified, wanted, ['email', 'id'], { kind: 'absent' })).toEqual({ action: 'add', sql: 'ALTER PUBLICATION "p" ADD TABLE "public"."users" ("email", "id")' });
    expect(planTable('p', users.qualified, wanted, ['email', 'id'], { kind: 'table', list: ['id', 'email'], rowFilter: null })).toEqual({ action: 'none' });
    expect(planTable('p', users.qualified, wanted, ['email', 'id'], { kind: 'table', list: ['id'], rowFilter: '(id > 0)' })).toEqual({
      action: 'replace',
      missing: ['email'],
      sql: ['BEGIN', 'ALTER PUBLICATION "p" DROP TABLE "public"."users"', 'ALTER PUBLICATION "p" ADD TABLE "public"."users" ("email", "id") WHERE ((id > 0))', 'COMMIT'],
    });
    expect(planTable('p', users.qualified, wanted, ['email', 'id'], { kind: 'table', list: null, rowFilter: null })).toMatchObject({ action: 'replace', missing: [] });
    expect(planTable('p', users.qualified, { list: null, why: 'full' }, ['email', 'id'], { kind: 'table', list: ['email', 'id'], rowFilter: null })).toMatchObject({ action: 'replace' });
    expect(planTable('p', users.qualified, wanted, ['email', 'id'], { kind: 'implicit' })).toEqual({ action: 'implicit' });
  });

  it('quotes names as SQL does', () => {
    expect(tableSpec('"public"."Sign-ups ""2024"""', ['E-mail', 'a"b'])).toBe('"public"."Sign-ups ""2024""" ("E-mail", "a""b")');
  });
});

describe('generated columns', () => {
  it('reach logical replication only from PostgreSQL 18, named in a list or with publish_generated_columns', () => {
    expect(generatedColumnPublished(150004, true, false)).toBe(false);
    expect(generatedColumnPublished(170002, true, true)).toBe(false);
    expect(generatedColumnPublished(180000, false, false)).toBe(false);
    expect(generatedColumnPublished(180000, true, false)).toBe(true);
    expect(generatedColumnPublished(180001, false, true)).toBe(true);
  });
});
