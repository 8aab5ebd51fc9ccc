/**
 * Field-level predicates behind the vendor's validation messages. Maintained libraries where one fits
 * (validator.js for email, URL, date and alphanumerics; iso-639-1 for languages; the runtime's ICU through
 * `Intl` for time zones); a pattern only where the vendor's own examples rule a library out (E.164, below).
 */
import ISO6391 from 'iso-639-1';
import validator from 'validator';

export type VariableType = 'string' | 'date';

/** What the validators need to know about a contact list; undefined skips the list-dependent checks. */
export interface ListSchema {
  id: string;
  variables: ReadonlyMap<string, VariableType>;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function hasKey(o: Record<string, unknown>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

/** Length in Unicode code points, which is what "symbols" and "characters" most plausibly count. */
export function symbolLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** RFC 2822 as validator.js understands it (its default options: no display names, a TLD required). */
export function isEmail(s: string): boolean {
  return validator.isEmail(s);
}

/**
 * E.164 *shape*: `+`, a non-zero digit, at most 15 digits in all. Not libphonenumber: the vendor's own example
 * "+15555555" is not a real number in any plan and would be rejected, yet the page offers it as valid.
 */
export function isE164(s: string): boolean {
  return /^\+[1-9]\d{1,14}$/.test(s);
}

/** A calendar-valid `YYYY-MM-DD` (rejects 1990-02-30). */
export function isYmdDate(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) && validator.isDate(s, { format: 'YYYY-MM-DD', strictMode: true, delimiters: ['-'] });
}

/** ISO 639-1 two-letter code, lower case as the standard writes them ("EN" is rejected). */
export function isIsoLanguage(s: string): boolean {
  return ISO6391.validate(s);
}

/**
 * An IANA zone name the runtime's ICU knows. The pages call the field "ISO 8601" but their only example is
 * `Europe/Tallinn`; offsets such as "+02:00" are rejected (Node 20's Intl rejects them too).
 */
const timezoneCache = new Map<string, boolean>();

export function isTimezone(s: string): boolean {
  if (s === '') return false;
  const known = timezoneCache.get(s);
  if (known !== undefined) return known;
  let valid: boolean;
  try {
    new Intl.DateTimeFormat('en', { timeZone: s });
    valid = true;
  } catch {
    valid = false;
  }
  // Building a DateTimeFormat costs ~130 µs, most of a contact's validation; real inputs repeat a few zones.
  if (timezoneCache.size >= 10_000) timezoneCache.clear();
  timezoneCache.set(s, valid);
  return valid;
}

/**
 * A link "must be a valid URL". The update example's links have no scheme ("facebook.com/wooxy.com") and are
 * meant to pass, so the scheme is optional.
 */
export function isLink(s: string): boolean {
  return validator.isURL(s, { require_protocol: false });
}

/** A webhook must be reachable by a POST, so a scheme (http or https) is required; hosts without a TLD pass. */
export function isWebhookUri(s: string): boolean {
  return validator.isURL(s, { require_protocol: true, protocols: ['http', 'https'], require_tld: false });
}

/**
 * "alphanumeric string with max length within 40 characters". The page's own example
 * `Customer_Source_ID_From_Your_Platform` must pass, so the underscore is admitted; nothing else is.
 */
export function isCustomerSourceId(s: string): boolean {
  return s.length > 0 && s.length <= 40 && validator.isAlphanumeric(s, 'en-US', { ignore: '_' });
}

/** Numbers, and numeric strings ("must have a numeric value" reads like PHP's is_numeric; cac sends "2.05"). */
export function toNumeric(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() === v && validator.isFloat(v)) return Number(v);
  return undefined;
}

const GENDER_STRINGS: Readonly<Record<string, 0 | 1 | 2 | 9>> = {
  '': 0,
  unknown: 0,
  undefined: 0,
  empty: 0,
  m: 1,
  male: 1,
  f: 2,
  female: 2,
  'n/a': 9,
  'not applicable': 9,
  na: 9,
};

/** ISO/IEC 5218 code for a documented gender value (integers 0, 1, 2, 9 or the listed strings, any case). */
export function genderCode(v: unknown): 0 | 1 | 2 | 9 | undefined {
  if (v === 0 || v === 1 || v === 2 || v === 9) return v;
  if (typeof v === 'string') {
    const key = v.toLowerCase();
    if (Object.prototype.hasOwnProperty.call(GENDER_STRINGS, key)) return GENDER_STRINGS[key];
  }
  return undefined;
}

/** Latin lowerCamelCase: starts with a lower-case letter, letters only ("No numbers or other symbols allowed"). */
export function isLowerCamelCase(s: string): boolean {
  return /^[a-z][a-zA-Z]*$/.test(s);
}

export const BOOLEAN_FIELDS = [
  'active',
  'emailSubscribe',
  'smsSubscribe',
  'desktopWebPushSubscribe',
  'mobileWebPushSubscribe',
  'telegramSubscribe',
  'viberSubscribe',
] as const;

export const LINK_FIELDS = ['avatarLink', 'facebookLink', 'instagramLink', 'linkedInLink', 'twitterLink', 'tiktokLink'] as const;

/** Every documented contact key (plus `contact`, update's finder). */
export const CONTACT_FIELDS = [
  'name',
  'email',
  'phoneNumber',
  'userId',
  ...BOOLEAN_FIELDS,
  'firstName',
  'lastName',
  'contactBirthday',
  'contactLanguage',
  'contactGender',
  'contactTimezone',
  'contactScore',
  ...LINK_FIELDS,
  'sourceId',
  'customerSourceId',
  'cac',
  'variables',
] as const;

/** The pages' examples spell this key with a trailing space; it is accepted as contactGender. */
export const GENDER_KEY_WITH_SPACE = 'contactGender ';

/**
 * Names a custom variable may not take. The pages document the message but not the list; the assumption is
 * the contact's own fields, and the names the messages use for them (birthday, language, gender, timezone,
 * score, externalId, phone, id).
 */
export const RESERVED_VARIABLE_NAMES: ReadonlySet<string> = new Set<string>([
  ...CONTACT_FIELDS,
  'contact',
  'id',
  'phone',
  'externalId',
  'birthday',
  'language',
  'gender',
  'timezone',
  'score',
]);
