import { isIsoLanguage, isTimezone } from '../wooxy/rules.js';
import { asText, bad, blank, ok, type Converted } from './converted.js';

/**
 * Languages and time zones, checked by the same predicates as the vendor's rules (the iso-639-1 package; the
 * runtime's ICU through `Intl`) and written the way Wooxy accepts them.
 */

/**
 * A language tag or code → its ISO 639-1 code: "EN", "en-US", "en_GB", "de-DE" → "en", "en", "en", "de"; the
 * ISO 639-2 codes ICU knows ("deu", "eng") and retired ones ("iw") through the canonical tag. A tag's own
 * two-letter code is preferred over its canonical form, which may leave ISO 639-1 ("tl" becomes "fil").
 */
export function toLanguage(v: unknown): Converted {
  if (blank(v)) return ok(undefined);
  const s = asText(v).trim();
  let code = codes.get(s);
  if (code === undefined) {
    code = languageCode(s);
    // Canonicalising a tag costs about a microsecond a row; real tables repeat a few languages.
    if (codes.size >= 10_000) codes.clear();
    codes.set(s, code);
  }
  return typeof code === 'string' ? ok(code) : bad(`${JSON.stringify(s)} ${code.problem} (format language)`);
}

const codes = new Map<string, string | { problem: string }>();

function languageCode(s: string): string | { problem: string } {
  const tag = s.replace(/_/g, '-');
  let canonical: string | undefined;
  try {
    canonical = Intl.getCanonicalLocales(tag)[0];
  } catch {
    return { problem: 'is not a language tag' };
  }
  for (const candidate of [tag.split('-')[0]!.toLowerCase(), canonical?.split('-')[0]]) {
    if (candidate?.length === 2 && isIsoLanguage(candidate)) return candidate;
  }
  return { problem: 'is not an ISO 639-1 language' };
}

const spelled = new Map<string, string>();

/**
 * An IANA time zone name the runtime knows. A name in the wrong case ("europe/berlin") gets the database's
 * spelling; other names are kept as written, since ICU's canonical form can be an outdated alias ("Europe/Kyiv"
 * resolves to "Europe/Kiev", "EST" to "America/Panama"). UTC offsets are refused whatever the runtime says:
 * the vendor's field is a zone name, and newer ICU versions accept "+02:00".
 */
export function toTimezone(v: unknown): Converted {
  if (blank(v)) return ok(undefined);
  const s = asText(v).trim();
  if (/^(?:(?:UTC|GMT)?[+\-\u2212]\d|Z$)/i.test(s)) return bad(`${JSON.stringify(s)} is a UTC offset, not a time zone name such as Europe/Berlin (format timezone)`);
  if (!isTimezone(s)) return bad(`${JSON.stringify(s)} is not a time zone name the platform knows (format timezone)`);
  let name = spelled.get(s);
  if (name === undefined) {
    const resolved = new Intl.DateTimeFormat('en', { timeZone: s }).resolvedOptions().timeZone;
    name = resolved.toLowerCase() === s.toLowerCase() ? resolved : s;
    // Resolving costs about as much as the check; real tables repeat a few zones.
    if (spelled.size >= 10_000) spelled.clear();
    spelled.set(s, name);
  }
  return ok(name);
}
