import { describe, expect, it } from 'vitest';
import { toLanguage, toTimezone } from '../../../src/mapping/locale.js';
import { isIsoLanguage, isTimezone } from '../../../src/wooxy/rules.js';

describe('format language', () => {
  it.each([
    ['en', 'en'],
    ['EN', 'en'],
    [' de ', 'de'],
    ['en-US', 'en'],
    ['en_GB', 'en'],
    ['zh-Hant-TW', 'zh'],
    ['deu', 'de'], // ISO 639-2, through ICU's canonical tag
    ['iw', 'he'], // a retired code
    ['tl', 'tl'], // its own two-letter code, although ICU's canonical form is "fil"
  ])('%j → %j', (input, code) => {
    expect(toLanguage(input)).toEqual({ ok: true, value: code });
    expect(isIsoLanguage(code)).toBe(true);
  });

  it('leaves NULL, empty and whitespace-only values out', () => {
    for (const v of [null, undefined, '', ' \t ']) expect(toLanguage(v)).toEqual({ ok: true, value: undefined });
  });

  it.each([
    ['klingon', /"klingon" is not an ISO 639-1 language \(format language\)/],
    ['English', /is not an ISO 639-1 language/], // names are not codes
    ['xx', /"xx" is not an ISO 639-1 language/],
    ['en-', /"en-" is not a language tag \(format language\)/],
    ['日本語', /is not a language tag/],
  ])('%j is a problem naming the value and the rule', (input, message) => {
    const r = toLanguage(input);
    expect(r).toMatchObject({ ok: false, strict: true });
    if (!r.ok) expect(r.problem).toMatch(message);
  });
});

describe('format timezone', () => {
  it.each([
    ['Europe/Tallinn', 'Europe/Tallinn'],
    ['europe/berlin', 'Europe/Berlin'], // the database's spelling for a name in the wrong case
    ['  America/New_York ', 'America/New_York'],
    ['utc', 'UTC'],
    ['Europe/Kyiv', 'Europe/Kyiv'], // kept as written: ICU would answer with the outdated "Europe/Kiev"
    ['Asia/Kolkata', 'Asia/Kolkata'],
    ['US/Pacific', 'US/Pacific'],
  ])('%j → %j', (input, zone) => {
    expect(toTimezone(input)).toEqual({ ok: true, value: zone });
    expect(isTimezone(zone)).toBe(true);
  });

  it('leaves NULL, empty and whitespace-only values out', () => {
    for (const v of [null, undefined, '', '   ']) expect(toTimezone(v)).toEqual({ ok: true, value: undefined });
  });

  it.each([
    ['Mars/Olympus_Mons', /"Mars\/Olympus_Mons" is not a time zone name the platform knows \(format timezone\)/],
    ['+02:00', /"\+02:00" is a UTC offset, not a time zone name/],
    ['UTC+2', /is a UTC offset/],
    ['GMT−05:00', /is a UTC offset/], // with a minus sign
    ['Z', /is a UTC offset/],
    ['Berlin', /is not a time zone name/],
  ])('%j is a problem naming the value and the rule', (input, message) => {
    const r = toTimezone(input);
    expect(r).toMatchObject({ ok: false, strict: true });
    if (!r.ok) expect(r.problem).toMatch(message);
  });
});
