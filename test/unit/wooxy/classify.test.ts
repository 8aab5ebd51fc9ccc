/** How one HTTP exchange becomes an outcome: the body first, the status only as a fallback. */
import { describe, expect, it } from 'vitest';
import { classifyResponse, parseRetryAfter, type HttpExchange } from '../../../src/wooxy/index.js';

const SECRET = 'secret-token-123';
const x = (status: number, body: unknown, retryAfter: string | null = null): HttpExchange => ({
  endpoint: 'contacts/add',
  status,
  retryAfter,
  bodyText: typeof body === 'string' ? body : JSON.stringify(body),
  accessToken: SECRET,
  now: Date.parse('2025-01-01T00:00:00Z'),
});
const code = (e: HttpExchange) => {
  const c = classifyResponse(e);
  return c.ok ? 'ok' : [c.error.code, c.error.retryable];
};

describe('classifyResponse', () => {
  it('result:true with a 2xx is passed on for the endpoint to check', () => {
    expect(classifyResponse(x(200, { result: true, requestId: 'r' }))).toEqual({ ok: true, body: { result: true, requestId: 'r' } });
  });

  it('result:false is a failure whatever the status', () => {
    for (const status of [200, 201, 400, 404, 422]) expect(code(x(status, { result: false, errors: ['Argument name must be a string'] }))).toEqual(['WOOXY_VALIDATION', false]);
  });

  it.each([
    ['Invalid authorization token!', 'WOOXY_UNAUTHORIZED', false],
    ['no matches found for access token abc', 'WOOXY_UNAUTHORIZED', false],
    ['user 17 not enabled', 'WOOXY_UNAUTHORIZED', false],
    ['no data found for key 17', 'WOOXY_UNAUTHORIZED', false],
    ['access token check failed for key/secret 1/abc', 'WOOXY_UNAUTHORIZED', false],
    ['Argument Access-Token required', 'WOOXY_UNAUTHORIZED', false],
    ['Internal server error', 'WOOXY_SERVER_ERROR', true],
    ['Request saving error. Please, contact us or try again later', 'WOOXY_SERVER_ERROR', true],
    ['Too many concurrent requests: at most 10 are allowed', 'WOOXY_RATE_LIMITED', true],
    ['List with id abc not found!', 'WOOXY_LIST_NOT_FOUND', false],
    ['Variable tier not found in list. Try to add it first', 'WOOXY_LIST_REJECTED', false],
    // About one contact's value, not the list: isolated by splitting.
    ['Variable signup type is date, but value is not valid date. Value yesterday', 'WOOXY_VALIDATION', false],
    ['sourceId nope not found in your account at contact position 3', 'WOOXY_VALIDATION', false],
    ['invalid RFC2822 email x at email field', 'WOOXY_VALIDATION', false],
    // Documented, but not about any contact's data: splitting would dead-letter contacts for nothing.
    ['Bad Request', 'WOOXY_UNDOCUMENTED', true],
    // No page documents it: the service's trouble, retried, never a dead letter.
    ['Something unexpected happened #4711', 'WOOXY_UNDOCUMENTED', true],
  ])('"%s" with HTTP 200 → %s', (message, expected, retryable) => {
    expect(code(x(200, { result: false, errors: [message] }))).toEqual([expected, retryable]);
  });

  it('a list-level message beside contact-level ones makes the whole rejection list-level', () => {
    const messages = ['invalid RFC2822 email x at email field', 'Variable tier not found in list. Try to add it first'];
    expect(code(x(200, { result: false, requestId: 'r', errors: messages }))).toEqual(['WOOXY_LIST_REJECTED', false]);
  });

  it('keeps the requestId and every message of a rejection', () => {
    const c = classifyResponse(x(400, { result: false, requestId: 'r1', errors: ['a', 'b', 'c', 'd'] }));
    expect(c.ok).toBe(false);
    if (c.ok) return;
    expect(c.error).toMatchObject({ requestId: 'r1', messages: ['a', 'b', 'c', 'd'], status: 400, endpoint: 'contacts/add' });
    expect(c.error.message).toBe('Wooxy contacts/add [HTTP 400]: a; b; c (and 1 more)');
  });

  it('without a usable body, the status decides', () => {
    expect(code(x(429, ''))).toEqual(['WOOXY_RATE_LIMITED', true]);
    expect(code(x(502, '<html>Bad Gateway</html>'))).toEqual(['WOOXY_SERVER_ERROR', true]);
    expect(code(x(503, { message: 'maintenance' }))).toEqual(['WOOXY_SERVER_ERROR', true]);
    expect(code(x(401, ''))).toEqual(['WOOXY_UNAUTHORIZED', false]);
    // An answer we cannot read says nothing about the data: transient.
    expect(code(x(404, 'Not Found'))).toEqual(['WOOXY_BAD_RESPONSE', true]);
    expect(code(x(200, '<html></html>'))).toEqual(['WOOXY_BAD_RESPONSE', true]);
    expect(code(x(200, { result: false, errors: [] }))).toEqual(['WOOXY_UNDOCUMENTED', true]);
  });

  it('a 429 or 5xx with result:false stays retryable even with a validation-looking message', () => {
    expect(code(x(429, { result: false, errors: ['slow down'] }))).toEqual(['WOOXY_RATE_LIMITED', true]);
    expect(code(x(500, { result: false, errors: ['something'] }))).toEqual(['WOOXY_SERVER_ERROR', true]);
  });

  it('classifies on the raw message but exposes the scrubbed one, even for a token that is a common word', () => {
    const c = classifyResponse({ ...x(200, { result: false, errors: ['no matches found for access token token'] }), accessToken: 'token' });
    expect(c.ok ? undefined : [c.error.code, c.error.messages]).toEqual(['WOOXY_UNAUTHORIZED', ['no matches found for access [redacted] [redacted]']]);
  });

  it('reads Retry-After', () => {
    const c = classifyResponse(x(429, '', '3'));
    expect(c.ok ? undefined : c.error.retryAfterMs).toBe(3_000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('delta-seconds, fractions, HTTP dates, garbage', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('0.25', now)).toBe(250);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
