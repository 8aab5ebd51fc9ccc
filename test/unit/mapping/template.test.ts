import { describe, expect, it } from 'vitest';
import { parseTemplate, renderTemplate, type Template } from '../../../src/mapping/template.js';

const t = (source: string): Template => {
  const parsed = parseTemplate(source);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
};

describe('templates', () => {
  const full = t('{first_name} {last_name}');

  it('joins the parts', () => {
    expect(renderTemplate(full, { first_name: 'Ada', last_name: 'Lovelace' })).toBe('Ada Lovelace');
    expect(renderTemplate(full, { first_name: 'Zoë 🌍', last_name: 'Ωmega' })).toBe('Zoë 🌍 Ωmega');
    expect(renderTemplate(t('{id}-{tenant}'), { id: 42, tenant: true })).toBe('42-true');
  });

  it('drops missing parts cleanly: no double or stray spaces, no "null"', () => {
    expect(renderTemplate(full, { first_name: null, last_name: 'Lovelace' })).toBe('Lovelace');
    expect(renderTemplate(full, { first_name: 'Ada', last_name: null })).toBe('Ada');
    expect(renderTemplate(full, { first_name: '  Ada ', last_name: '\tLovelace\n' })).toBe('Ada Lovelace');
    expect(renderTemplate(full, { first_name: '', last_name: '   ' })).toBeNull();
    expect(renderTemplate(full, { first_name: null, last_name: null })).toBeNull();
    const comma = t('{last_name}, {first_name}');
    expect(renderTemplate(comma, { first_name: 'Ada', last_name: null })).toBe('Ada');
    expect(renderTemplate(comma, { first_name: null, last_name: 'Lovelace' })).toBe('Lovelace');
  });

  it('keeps the separator after the earlier value when one in the middle is missing', () => {
    const three = t('{a} / {b} - {c}');
    expect(renderTemplate(three, { a: 'A', b: null, c: 'C' })).toBe('A / C');
    expect(renderTemplate(three, { a: null, b: 'B', c: 'C' })).toBe('B - C');
    expect(renderTemplate(three, { a: 'A', b: 'B', c: null })).toBe('A / B');
  });

  it('keeps text before the first and after the last placeholder while any value is there', () => {
    const dr = t('Dr. {first} {last} (retired)');
    expect(renderTemplate(dr, { first: null, last: 'Hopper' })).toBe('Dr. Hopper (retired)');
    expect(renderTemplate(dr, { first: null, last: null })).toBeNull();
  });

  it('is unknown, not shorter, when a part is an unchanged TOASTed value the stream did not resend', () => {
    expect(renderTemplate(full, { first_name: 'Ada', last_name: undefined })).toBeUndefined();
  });

  it('reads column names with spaces and dots, and {{ }} as literal braces', () => {
    const odd = t('{{{Select "Order"}}} {a.b}');
    expect(odd.columns).toEqual(['Select "Order"', 'a.b']);
    expect(renderTemplate(odd, { 'Select "Order"': 'x', 'a.b': 'y' })).toBe('{x} y');
  });

  it.each([
    ['{first', /unclosed \{ at position 1/],
    ['first}', /unmatched \} at position 6/],
    ['{}', /empty placeholder/],
    ['no placeholders', /needs at least one \{column\}/],
    [`{${'x'.repeat(64)}}`, /at most 63 bytes/],
  ])('refuses %j', (source, message) => {
    const parsed = parseTemplate(source);
    expect('error' in parsed && parsed.error).toMatch(message);
  });
});
