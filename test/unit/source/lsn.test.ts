/**
 * LSN arithmetic: Postgres prints `16/B374D848`, the protocol and some tools zero-pad (`00000016/B374D848`).
 * Compared as text the two forms disagree, and so do `9/0` and `10/0`: everything must go through numbers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCdcError } from '../../../src/errors.js';
import { bigIntToLsn, compareLsn, lsnToBigInt, maxLsn, normalizeLsn, ZERO_LSN } from '../../../src/source/lsn.js';

const U64_MAX = 2n ** 64n - 1n;
const anyLsn = fc.bigInt({ min: 0n, max: U64_MAX });
/** The same position in the padded form some tools print, in either case. */
const padded = (v: bigint, lower = false) => {
  const s = `${(v >> 32n).toString(16).padStart(8, '0')}/${(v & 0xffffffffn).toString(16).padStart(8, '0')}`;
  return lower ? s : s.toUpperCase();
};

describe('LSN', () => {
  it('reads both string formats, in either case, as the same 64-bit number', () => {
    expect(lsnToBigInt('16/B374D848')).toBe(0x16_b374d848n);
    expect(lsnToBigInt('00000016/B374D848')).toBe(0x16_b374d848n);
    expect(lsnToBigInt('16/b374d848')).toBe(0x16_b374d848n);
    expect(lsnToBigInt(' 0/0\n')).toBe(0n);
    expect(lsnToBigInt('FFFFFFFF/FFFFFFFF')).toBe(U64_MAX);
    // The low half is not shifted: `0/10` is 16, not 0x10000000.
    expect(lsnToBigInt('0/10')).toBe(16n);
    expect(lsnToBigInt('1/0')).toBe(2n ** 32n);
  });

  it('refuses what is not an LSN, with a code', () => {
    for (const bad of ['', '16', '16/', '/16', '1/2/3', 'G/0', '0/-1', '123456789/0', '0/123456789', '16 / B374D848', '0x16/B374D848']) {
      let thrown: unknown;
      try {
        lsnToBigInt(bad);
      } catch (e) {
        thrown = e;
      }
      expect(isCdcError(thrown, 'LSN_INVALID'), JSON.stringify(bad)).toBe(true);
    }
    expect(() => bigIntToLsn(-1n)).toThrow(/outside 0 … 2\^64 − 1/);
    expect(() => bigIntToLsn(U64_MAX + 1n)).toThrow(/outside 0 … 2\^64 − 1/);
  });

  it('prints the canonical form: no padding, upper case', () => {
    expect(bigIntToLsn(0n)).toBe(ZERO_LSN);
    expect(bigIntToLsn(0x16_b374d848n)).toBe('16/B374D848');
    expect(bigIntToLsn(2n ** 32n)).toBe('1/0');
    expect(bigIntToLsn(U64_MAX)).toBe('FFFFFFFF/FFFFFFFF');
    expect(normalizeLsn('00000016/b374d848')).toBe('16/B374D848');
    expect(normalizeLsn('00000000/00000000')).toBe('0/0');
    expect(normalizeLsn('0/0000000A')).toBe('0/A');
  });

  it('round-trips every 64-bit value through both formats', () => {
    fc.assert(
      fc.property(anyLsn, fc.boolean(), (v, lower) => {
        const text = bigIntToLsn(v);
        expect(lsnToBigInt(text)).toBe(v);
        expect(normalizeLsn(padded(v, lower))).toBe(text);
        expect(normalizeLsn(text)).toBe(text);
      }),
    );
  });

  it('compares by position, where text comparison gets it wrong', () => {
    expect(compareLsn('9/0', '10/0')).toBe(-1); // "9/0" > "10/0" as text
    expect(compareLsn('0/A', '0/10')).toBe(-1); // "0/A" > "0/10" as text
    expect(compareLsn('0/FFFFFFFF', '1/0')).toBe(-1);
    expect(compareLsn('00000016/B374D848', '16/b374d848')).toBe(0);
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBe(1);
    fc.assert(
      fc.property(anyLsn, anyLsn, fc.boolean(), (a, b, pad) => {
        const x = pad ? padded(a) : bigIntToLsn(a);
        const expected = a < b ? -1 : a > b ? 1 : 0;
        expect(compareLsn(x, bigIntToLsn(b))).toBe(expected);
        expect(maxLsn(x, bigIntToLsn(b))).toBe(bigIntToLsn(a > b ? a : b));
      }),
    );
  });

  it('maxLsn answers in the canonical form, whichever form it was given', () => {
    expect(maxLsn('00000001/00000000', '0/FFFFFFFF')).toBe('1/0');
    expect(maxLsn('0/1', '00000000/0000000a')).toBe('0/A');
  });
});
