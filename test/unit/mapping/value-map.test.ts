import { describe, expect, it } from 'vitest';
import { applyMap } from '../../../src/mapping/value-map.js';

describe('value maps', () => {
  const tiers = { entries: { gold: 'vip', silver: 'regular', 'Ünï cödé': 'unicode', true: 'yes', '1': 'one' } };

  it('maps by the value text, trimmed', () => {
    expect(applyMap('gold', tiers)).toEqual({ ok: true, value: 'vip' });
    expect(applyMap('silver    ', tiers)).toEqual({ ok: true, value: 'regular' }); // char(10) pads with spaces
    expect(applyMap('Ünï cödé', tiers)).toEqual({ ok: true, value: 'unicode' });
    expect(applyMap(true, tiers)).toEqual({ ok: true, value: 'yes' });
    expect(applyMap(1, tiers)).toEqual({ ok: true, value: 'one' });
  });

  it('leaves NULL as NULL: the field applies its own NULL rule', () => {
    expect(applyMap(null, tiers)).toEqual({ ok: true, value: null });
    expect(applyMap(null, { ...tiers, default: 'standard' })).toEqual({ ok: true, value: null });
  });

  it('gives an unmapped value the default, null included', () => {
    expect(applyMap('bronze', { ...tiers, default: 'standard' })).toEqual({ ok: true, value: 'standard' });
    expect(applyMap('bronze', { ...tiers, default: null })).toEqual({ ok: true, value: null });
  });

  it('is case-sensitive, and an unmapped value without a default is a problem naming it and the keys', () => {
    for (const v of ['Gold', 'bronze', '', '   ']) {
      const r = applyMap(v, tiers);
      expect(r).toMatchObject({ ok: false, strict: true });
      if (!r.ok) expect(r.problem).toBe(`${JSON.stringify(v.trim())} is not in the value map (1, gold, silver, Ünï cödé, true) and there is no default`);
    }
  });
});
