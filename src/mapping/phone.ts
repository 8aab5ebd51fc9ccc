import { ParseError, isSupportedCountry, parsePhoneNumberWithError, validatePhoneNumberLength, type CountryCode } from 'libphonenumber-js/min';
import { asText, bad, ok, type Converted } from './converted.js';

/**
 * `format: e164`: a national or formatted number ("030 1234567", "(030) 123-4567", "+49 30 1234567") → E.164.
 *
 * Acceptance is libphonenumber's *possible* number (its length fits the country's plan), not *valid* (the digits
 * match an assigned range): validity rules go stale as ranges are assigned, and a stale rule would dead-letter a
 * real customer, while the shape Wooxy checks is E.164's. `min` metadata therefore suffices, and is what this
 * imports: it carries the countries' possible lengths, and `isPossible()` answers the same as with `max` on all
 * 20,980 inputs compared (every country's example numbers, cut short, plus random digits), where `isValid()`
 * differed on 817; test/unit/mapping/phone.test.ts repeats the comparison. The cost is leniency where a plan
 * allows many lengths: in Germany (4 to 15 digits) "0151 1234" is possible.
 */

const REASONS: Record<string, string> = {
  NOT_A_NUMBER: 'not a phone number',
  INVALID_COUNTRY: 'no country code, and no defaultCountry to read it as national',
  TOO_SHORT: 'too short',
  TOO_LONG: 'too long',
  INVALID_LENGTH: 'a length no number of that country has',
};

const describe = (s: string, defaultCountry: string | undefined, reason: string) =>
  `${JSON.stringify(s)} is not a possible phone number: ${reason} (format e164${defaultCountry ? `, defaultCountry ${defaultCountry}` : ''})`;

export function isPhoneCountry(code: string): boolean {
  return isSupportedCountry(code);
}

export function toE164(v: unknown, defaultCountry?: string): Converted {
  if (v === null || v === undefined) return ok(undefined);
  const s = asText(v).trim();
  if (s === '') return ok(undefined);
  const country = defaultCountry as CountryCode | undefined;
  let parsed;
  try {
    // extract:false: the whole value must be the number, not a number found somewhere inside a text.
    parsed = parsePhoneNumberWithError(s, { defaultCountry: country, extract: false });
  } catch (e) {
    if (e instanceof ParseError) return bad(describe(s, defaultCountry, REASONS[e.message] ?? e.message));
    throw e;
  }
  // E.164 has no extensions: sending the main line would merge everyone behind one switchboard into one contact.
  if (parsed.ext) return bad(describe(s, defaultCountry, `it has an extension (${parsed.ext}), which E.164 cannot carry`));
  if (!parsed.isPossible()) {
    const why = validatePhoneNumberLength(s, { defaultCountry: country });
    return bad(describe(s, defaultCountry, REASONS[why ?? 'INVALID_LENGTH'] ?? String(why)));
  }
  // Some plans allow national numbers of 15 digits (Germany's does), which with the country code exceed E.164.
  const digits = parsed.number.length - 1;
  if (digits > 15) return bad(describe(s, defaultCountry, `${parsed.number} has ${digits} digits, and E.164 allows at most 15`));
  return ok(parsed.number);
}
