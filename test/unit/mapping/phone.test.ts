import * as max from 'libphonenumber-js/max';
import * as min from 'libphonenumber-js/min';
import examples from 'libphonenumber-js/examples.mobile.json';
import { describe, expect, it } from 'vitest';
import { toE164 } from '../../../src/mapping/phone.js';
import { isE164 } from '../../../src/wooxy/rules.js';

describe('format e164', () => {
  it.each([
    ['030 1234567', 'DE', '+49301234567'],
    ['(030) 123-4567', 'DE', '+49301234567'],
    ['+49 30 1234567', 'DE', '+49301234567'],
    ['0049 30 1234567', 'DE', '+49301234567'],
    ['+49 (0) 30 1234567', 'DE', '+49301234567'],
    ['  0151 12345678\t', 'DE', '+4915112345678'],
    ['0151/1234-5678', 'DE', '+4915112345678'],
    ['030１２３４５６７', 'DE', '+49301234567'], // full-width digits, as some input methods type them
    ['+44 20 7946 0958', 'DE', '+442079460958'], // an international number keeps its own country
    ['+1 555 555 0100', undefined, '+15555550100'],
    ['(415) 555-0100', 'US', '+14155550100'],
  ])('%j with defaultCountry %s is %s', (input, country, e164) => {
    const r = toE164(input, country);
    expect(r).toEqual({ ok: true, value: e164 });
    expect(isE164(e164)).toBe(true);
  });

  it('reads numbers from integer columns too, where the national 0 is lost', () => {
    expect(toE164(301_234_567, 'DE')).toEqual({ ok: true, value: '+49301234567' });
    expect(toE164('15112345678', 'DE')).toEqual({ ok: true, value: '+4915112345678' }); // bigint arrives as text
  });

  it('accepts what is possible, not only what is assigned: Germany allows 4 to 15 digits', () => {
    // The leniency of the rule, stated: these are not real numbers, but their lengths fit the plan.
    expect(toE164('0151 1234', 'DE')).toEqual({ ok: true, value: '+491511234' });
    expect(toE164('0800 123456', 'DE')).toEqual({ ok: true, value: '+49800123456' });
  });

  it('leaves NULL, empty and whitespace-only values out, as the identifier rule does for NULL', () => {
    for (const v of [null, undefined, '', '   ', '\u00a0\t']) expect(toE164(v, 'DE')).toEqual({ ok: true, value: undefined });
  });

  it.each([
    ['12', 'DE', /"12" is not a possible phone number: too short \(format e164, defaultCountry DE\)/],
    ['+49 151', 'DE', /"\+49 151" is not a possible phone number: too short/],
    ['+49 151 1234 5678 9012 3', 'DE', /too long/],
    ['030 1234567', undefined, /"030 1234567" is not a possible phone number: no country code, and no defaultCountry/],
    ['not a number', 'DE', /"not a number" is not a possible phone number: not a phone number/],
    ['call 030 1234567 now', 'DE', /is not a possible phone number/], // the value must be the number, not contain one
    ['+15555555', undefined, /"\+15555555" is not a possible phone number: too short/], // the vendor's own example is not possible
    ['030 1234567 ext. 12', 'DE', /it has an extension \(12\), which E\.164 cannot carry/],
    ['0151 123456789012', 'DE', /\+49151123456789012 has 17 digits, and E\.164 allows at most 15/], // possible in Germany's plan
    ['0151 1234 5678 9012 3', 'DE', /too long/],
    ['☎ ０３０', 'DE', /is not a possible phone number/],
  ])('%j (defaultCountry %s) is a problem naming the value and the rule', (input, country, message) => {
    const r = toE164(input, country);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problem).toMatch(message);
      expect(r.strict).toBe(true);
    }
  });

  it('accepts what min metadata calls possible exactly where max metadata does (the reason min is enough)', () => {
    // Every country's example number, cut short by one and two digits, international and national; then random
    // digit strings. isValid() differs between the two metadata sets; isPossible(), the rule used, must not.
    const inputs: Array<[string, string | undefined]> = [];
    for (const [country, nsn] of Object.entries(examples as Record<string, string>)) {
      const cc = min.getCountryCallingCode(country as min.CountryCode);
      for (const cut of [0, 1, 2]) inputs.push([`+${cc}${nsn.slice(0, nsn.length - cut)}`, undefined], [`0${nsn.slice(0, nsn.length - cut)}`, country]);
    }
    let seed = 7;
    const rnd = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const countries = min.getCountries();
    for (let i = 0; i < 2_000; i++) {
      const digits = Array.from({ length: 3 + Math.floor(rnd() * 14) }, () => Math.floor(rnd() * 10)).join('');
      inputs.push(i % 2 ? [`+${digits}`, undefined] : [digits, countries[Math.floor(rnd() * countries.length)]]);
    }
    const differ = inputs.filter(([s, c]) => {
      const a = min.parsePhoneNumberFromString(s, { defaultCountry: c as min.CountryCode, extract: false });
      const b = max.parsePhoneNumberFromString(s, { defaultCountry: c as max.CountryCode, extract: false });
      return (a?.isPossible() ?? false) !== (b?.isPossible() ?? false) || a?.number !== b?.number;
    });
    expect(inputs.length).toBeGreaterThan(2_500);
    expect(differ).toEqual([]);
  });
});
