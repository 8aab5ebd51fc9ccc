import { describe, expect, it } from 'vitest';
import { toEmail } from '../../../src/mapping/email.js';
import { isEmail } from '../../../src/wooxy/rules.js';

describe('format email', () => {
  it.each([
    ['ada@example.com', 'ada@example.com'],
    ['  Ada.Lovelace@Example.COM \n', 'Ada.Lovelace@example.com'], // trimmed; the domain lowercased, the local part kept
    ['jörg@Bücher.Example', 'jörg@xn--bcher-kva.example'], // an internationalised domain as its ASCII form
    ['user@例子.中国', 'user@xn--fsqu00a.xn--fiqs8s'],
    ['x@ＥＸＡＭＰＬＥ.com', 'x@example.com'], // full-width letters, mapped by UTS #46
    ['"a b"@example.com', '"a b"@example.com'], // a quoted local part the vendor's rule accepts
    ['first+tag@sub.example.co.uk', 'first+tag@sub.example.co.uk'],
  ])('%j → %j', (input, output) => {
    expect(toEmail(input)).toEqual({ ok: true, value: output });
    expect(isEmail(output)).toBe(true);
  });

  it('lowercases the local part only when asked, since it can name another mailbox', () => {
    expect(toEmail('Ada@Example.com')).toEqual({ ok: true, value: 'Ada@example.com' });
    expect(toEmail('Ada@Example.com', { lowercaseLocalPart: true })).toEqual({ ok: true, value: 'ada@example.com' });
    expect(toEmail('ÄRGER@example.com', { lowercaseLocalPart: true })).toEqual({ ok: true, value: 'ärger@example.com' });
  });

  it('leaves NULL, empty and whitespace-only values out', () => {
    for (const v of [null, undefined, '', '  ', '\u00a0']) expect(toEmail(v)).toEqual({ ok: true, value: undefined });
  });

  it.each([
    ['no-at-sign', /"no-at-sign" is not an email address: it needs a local part, an @ and a domain \(format email\)/],
    ['@example.com', /needs a local part/],
    ['ada@', /needs a local part/],
    ['ada@exa mple.com', /"ada@exa mple\.com" has no valid domain name \(format email\)/],
    ['ada@localhost', /"ada@localhost" is not an email address Wooxy accepts \(RFC 2822; format email\)/], // no TLD
    ['ada@example.com.', /is not an email address Wooxy accepts/],
    ['a b@example.com', /is not an email address Wooxy accepts/],
    ['ada@[127.0.0.1]', /has no valid domain name/],
  ])('%j is a problem naming the value and the rule', (input, message) => {
    const r = toEmail(input);
    expect(r).toMatchObject({ ok: false, strict: true });
    if (!r.ok) expect(r.problem).toMatch(message);
  });
});
