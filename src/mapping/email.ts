import { domainToASCII } from 'node:url';
import { isEmail } from '../wooxy/rules.js';
import { asText, bad, blank, ok, type Converted } from './converted.js';

/**
 * `format: email`: trims, writes the domain the way RFC 2822 (which Wooxy names) requires — lower case, an
 * internationalised domain as its ASCII (punycode) form, so "Jörg@Bücher.Example" becomes
 * "Jörg@xn--bcher-kva.example" — and rejects what the vendor's email rule rejects. The local part keeps its case
 * unless `lowercaseLocalPart` is set: mailbox names may be case-sensitive, so lowercasing can change which
 * contact an address names, and two rows that differ only there would then claim one contact.
 */
export function toEmail(v: unknown, opts: { lowercaseLocalPart?: boolean } = {}): Converted {
  if (blank(v)) return ok(undefined);
  const s = asText(v).trim();
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1) return bad(`${JSON.stringify(s)} is not an email address: it needs a local part, an @ and a domain (format email)`);
  const local = opts.lowercaseLocalPart ? s.slice(0, at).toLowerCase() : s.slice(0, at);
  // WHATWG's domain-to-ASCII: case folding and UTS #46 mapping (full-width letters too), then punycode; '' when invalid.
  const domain = domainToASCII(s.slice(at + 1));
  if (domain === '') return bad(`${JSON.stringify(s)} has no valid domain name (format email)`);
  const address = `${local}@${domain}`;
  return isEmail(address) ? ok(address) : bad(`${JSON.stringify(s)} is not an email address Wooxy accepts (RFC 2822; format email)`);
}
