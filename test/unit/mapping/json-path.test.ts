import { describe, expect, it } from 'vitest';
import { parsePath, readPath } from '../../../src/mapping/json-path.js';

const prefs = { language: 'de', settings: { locale: { language: 'fr' }, 'a.b': 'dotted', empty: '', nothing: null }, phones: ['+49301234567', '+4915112345678'] };

describe('json paths', () => {
  it('reads a key, a nested key and an array element', () => {
    expect(readPath(prefs, parsePath('language'))).toEqual({ ok: true, value: 'de' });
    expect(readPath(prefs, parsePath('settings.locale.language'))).toEqual({ ok: true, value: 'fr' });
    expect(readPath(prefs, parsePath('phones.1'))).toEqual({ ok: true, value: '+4915112345678' });
    expect(readPath(prefs, parsePath(['settings', 'a.b']))).toEqual({ ok: true, value: 'dotted' });
  });

  it('reads json that arrives as text (a domain over jsonb in the stream), and unicode keys', () => {
    expect(readPath(JSON.stringify({ sprache: { 'größe': 'XL' } }), parsePath('sprache.größe'))).toEqual({ ok: true, value: 'XL' });
  });

  it('is NULL for a missing key, a JSON null, a NULL column, and a path through a scalar', () => {
    for (const [doc, path] of [
      [prefs, 'nope'],
      [prefs, 'settings.nothing'],
      [prefs, 'phones.7'],
      [prefs, 'language.more'],
      [null, 'language'],
      ['"just a string"', 'language'],
      ['not json at all', 'language'],
    ] as const) {
      expect(readPath(doc, parsePath(path)), `${JSON.stringify(doc)} ${path}`).toEqual({ ok: true, value: null });
    }
    expect(readPath(prefs, parsePath('settings.empty'))).toEqual({ ok: true, value: '' });
  });

  it('is unknown when the column is (an unchanged TOASTed value)', () => {
    expect(readPath(undefined, ['language'])).toEqual({ ok: true, value: undefined });
  });

  it('refuses a path that ends at an object or an array, naming it', () => {
    const r = readPath(prefs, parsePath('settings.locale'));
    expect(r).toMatchObject({ ok: false, strict: true, problem: 'path settings.locale leads to an object, not a value: {"language":"fr"}' });
    expect(readPath(prefs, parsePath('phones'))).toMatchObject({ ok: false, problem: expect.stringMatching(/^path phones leads to an array/) });
  });
});
