/**
 * WooxyClient against the emulator over real HTTP: each outcome class, the retry policy, the limits checked
 * before sending, and the access token kept out of every error and log line.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { WooxyClient, WooxyError, createLimiter, isContactErrorCode, type WooxyClientOptions } from '../../src/wooxy/index.js';
import { LIST_ID, TOKEN, startEmulator } from '../helpers/emulator.js';
import { waitFor } from '../helpers/wait.js';

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator({ processing: { auto: false } });
});
afterAll(() => emulator.close());
afterEach(() => emulator.reset());

/** A client with near-zero backoff, so retry tests run in milliseconds. */
function client(options: Partial<WooxyClientOptions> = {}): WooxyClient {
  return new WooxyClient({
    accessToken: TOKEN,
    baseUrl: emulator.url,
    limiter: createLimiter(),
    retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
    timeoutMs: 2_000,
    ...options,
  });
}

async function failure(promise: Promise<unknown>): Promise<WooxyError> {
  const e = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(WooxyError);
  return e as WooxyError;
}

const apiCalls = () => emulator.requestLog().length;

describe('successful calls', () => {
  it('add, update, remove and find return typed answers', async () => {
    const c = client();
    const added = await c.add({ contactListId: LIST_ID, contacts: [{ userId: 'u1', email: 'a@example.com' }] });
    expect(added).toEqual({ requestId: expect.stringMatching(/^[0-9a-f]{24}$/), attempts: 1 });
    const updated = await c.update({ contactListId: LIST_ID, upsert: false, contacts: [{ contact: 'u1', userId: 'u1', firstName: 'Ann' }] });
    const removed = await c.remove({ contactListId: LIST_ID, userIds: ['u1'] });
    expect(emulator.processNow()).toBe(3);

    const found = await c.find([added.requestId, updated.requestId, removed.requestId, '000000000000000000000000']);
    expect(found.missing).toEqual(['000000000000000000000000']);
    expect(found.requests[added.requestId]).toMatchObject({ source: 'API_CREATE', status: 'done' });
    expect(found.requests[updated.requestId]?.results.success).toEqual([{ id: expect.any(String), email: 'a@example.com', phone: null, userId: 'u1' }]);
    expect(found.requests[removed.requestId]).toMatchObject({ source: 'API_REMOVE', status: 'done' });
  });

  it('find: "No matches found" is an answer with every id missing, not an error', async () => {
    const found = await client().find(['a', 'b']);
    expect(found).toEqual({ requests: {}, missing: ['a', 'b'] });
    expect(apiCalls()).toBe(1);
  });

  it('find still recognises "No matches found" when a (short) token is scrubbed out of it', async () => {
    const short = await startEmulator({ tokens: ['t'] });
    try {
      const c = new WooxyClient({ accessToken: 't', baseUrl: short.url, limiter: createLimiter() });
      expect(await c.find(['x'])).toEqual({ requests: {}, missing: ['x'] });
    } finally {
      await short.close();
    }
  });

  it('find of no ids makes no call', async () => {
    expect(await client().find([])).toEqual({ requests: {}, missing: [] });
    expect(apiCalls()).toBe(0);
  });
});

describe('outcome classes', () => {
  it('validation: WOOXY_VALIDATION with the vendor’s messages, not retried', async () => {
    const e = await failure(client().add({ contactListId: LIST_ID, contacts: [{ email: 'nope', userId: 'u1', contactLanguage: 'xx' }] }));
    expect(e).toMatchObject({ code: 'WOOXY_VALIDATION', retryable: false, status: 400, attempts: 1, endpoint: 'contacts/add' });
    expect(e.messages).toEqual(['invalid RFC2822 email nope at email field', 'Argument language must be a valid ISO language']);
    expect(e.requestId).toMatch(/^[0-9a-f]{24}$/);
    expect(apiCalls()).toBe(1);
  });

  it('an unknown list: WOOXY_LIST_NOT_FOUND, not retried', async () => {
    const e = await failure(client().remove({ contactListId: 'gone', emails: ['a@example.com'] }));
    expect(e).toMatchObject({ code: 'WOOXY_LIST_NOT_FOUND', retryable: false, messages: ['List with id gone not found!'] });
    expect(apiCalls()).toBe(1);
  });

  it('authorization: WOOXY_UNAUTHORIZED, fatal, not retried', async () => {
    const e = await failure(client({ accessToken: 'wrong-token' }).find(['x']));
    expect(e).toMatchObject({ code: 'WOOXY_UNAUTHORIZED', retryable: false, status: 401, messages: ['Invalid authorization token!'], attempts: 1 });
    expect(apiCalls()).toBe(1);
  });

  it.each([
    ['rateLimit', 'WOOXY_RATE_LIMITED', 429],
    ['serverError', 'WOOXY_SERVER_ERROR', 500],
    ['savingError', 'WOOXY_SERVER_ERROR', 500],
  ] as const)('%s is retried, and the call then succeeds', async (kind, code, status) => {
    emulator.setFaults({ next: [{ kind, count: 2 }] });
    const answer = await client().add({ contactListId: LIST_ID, contacts: [{ userId: 'u1' }] });
    expect(answer.attempts).toBe(3);
    expect(emulator.requestLog().map((r) => r.httpStatus)).toEqual([status, status, 200]);
    // …and the same fault with no attempts left shows its class.
    emulator.setFaults({ next: [{ kind, count: 1 }] });
    const e = await failure(client({ retry: { maxAttempts: 1 } }).add({ contactListId: LIST_ID, contacts: [{ userId: 'u2' }] }));
    expect(e).toMatchObject({ code, retryable: true, status, attempts: 1 });
  });

  it('an unanswered find times out (WOOXY_TIMEOUT), keeps its slot for the grace period, and is retried', async () => {
    emulator.setFaults({ next: [{ kind: 'timeout', count: 1 }] });
    const answer = await client({ timeoutMs: 150, timeoutGraceMs: 10 }).find(['x']);
    expect(answer.missing).toEqual(['x']);
    expect(emulator.requestLog().map((r) => r.outcome)).toEqual(['timeout', 'noMatches']);

    emulator.setFaults({ next: [{ kind: 'timeout', count: 1 }] });
    const e = await failure(client({ timeoutMs: 100, timeoutGraceMs: 10, retry: { maxAttempts: 1 } }).find(['x']));
    expect(e).toMatchObject({ code: 'WOOXY_TIMEOUT', retryable: true, outcomeUnknown: true, messages: ['no answer within 100 ms'] });
  });

  it('an add that times out is an unknown, not a failure: not retried, and its limiter slot stays taken for the grace period', async () => {
    emulator.setFaults({ next: [{ kind: 'timeout', count: 1 }] });
    const limiter = createLimiter({ concurrency: 2 });
    const c = client({ limiter, timeoutMs: 100, timeoutGraceMs: 400 });
    const started = Date.now();
    const call = failure(c.add({ contactListId: LIST_ID, contacts: [{ userId: 'u1' }] }));
    // Past the timeout, Wooxy may still be working on it: the slot is not given back yet.
    await waitFor(() => Date.now() - started > 250, { message: 'inside the grace period' });
    expect(limiter.inFlight).toBe(1);
    const e = await call;
    expect(Date.now() - started).toBeGreaterThanOrEqual(490);
    expect(e).toMatchObject({ code: 'WOOXY_TIMEOUT', retryable: false, outcomeUnknown: true, attempts: 1 });
    expect(limiter.inFlight).toBe(0);
    expect(emulator.requestLog().map((r) => r.outcome)).toEqual(['timeout']);
  });

  it('connection refused: WOOXY_NETWORK, retried until the attempts run out', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const e = await failure(client({ baseUrl: `http://127.0.0.1:${port}/v3`, retry: { maxAttempts: 3, baseDelayMs: 1 } }).find(['x']));
    expect(e).toMatchObject({ code: 'WOOXY_NETWORK', retryable: true, attempts: 3, messages: ['connection failed: ECONNREFUSED'] });
  });

  it('a body that is not the documented JSON: WOOXY_BAD_RESPONSE, transient (it says nothing about the data), retried', async () => {
    emulator.setFaults({ next: [{ kind: 'badResponse', count: 1 }] });
    const accepted = await client().add({ contactListId: LIST_ID, contacts: [{ userId: 'u1' }] });
    expect(accepted.attempts).toBe(2);
    emulator.setFaults({ next: [{ kind: 'badResponse', count: 1 }] });
    const e = await failure(client({ retry: { maxAttempts: 1 } }).add({ contactListId: LIST_ID, contacts: [{ userId: 'u2' }] }));
    expect(e).toMatchObject({ code: 'WOOXY_BAD_RESPONSE', retryable: true, status: 200, attempts: 1 });
  });

  it('failures answered with HTTP 200 are still failures: the client reads `result`, not the status', async () => {
    emulator.setFaults({ okStatusForErrors: true });
    const e = await failure(client().add({ contactListId: LIST_ID, contacts: [{ name: 'no identifier' }] }));
    expect(e).toMatchObject({ code: 'WOOXY_VALIDATION', status: 200 });
    emulator.setFaults({ next: [{ kind: 'rateLimit', count: 1 }] });
    const e2 = await failure(client({ retry: { maxAttempts: 1 } }).find(['x']));
    expect(e2).toMatchObject({ code: 'WOOXY_RATE_LIMITED', status: 200, retryable: true });
  });
});

describe('answers the emulator never gives', () => {
  /** A stand-in server answering every call with `status` and `body`. */
  async function withServer(status: number, body: string, run: (c: WooxyClient) => Promise<void>): Promise<void> {
    const server = createServer((_req, res) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await run(client({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3` }));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  it('result:true without a requestId is WOOXY_BAD_RESPONSE, retried as transient', async () => {
    await withServer(200, '{"result":true}', async (c) => {
      const e = await failure(c.add({ contactListId: LIST_ID, contacts: [{ userId: 'u1' }] }));
      expect(e).toMatchObject({ code: 'WOOXY_BAD_RESPONSE', retryable: true, attempts: 4 });
    });
  });

  it('an undocumented result:false (no page has its message) is transient, never a validation error', async () => {
    await withServer(200, '{"result":false,"errors":["Something unexpected happened #4711"]}', async (c) => {
      const e = await failure(c.add({ contactListId: LIST_ID, contacts: [{ userId: 'u1' }] }));
      expect(e).toMatchObject({ code: 'WOOXY_UNDOCUMENTED', retryable: true, attempts: 4, messages: ['Something unexpected happened #4711'] });
    });
    await withServer(200, '{"result":false,"errors":[]}', async (c) => {
      const e = await failure(c.add({ contactListId: LIST_ID, contacts: [{ userId: 'u1' }] }));
      expect(e).toMatchObject({ code: 'WOOXY_UNDOCUMENTED', retryable: true });
    });
  });

  it('an undocumented per-contact error code passes through; a status without an id does not', async () => {
    const status = { id: 'r', source: 'API_CREATE', status: 'done', webHookUri: null, createdAt: '', updatedAt: '', results: { errors: [{ error: 'ERR_NEW', contact: {}, humanError: '' }], success: [] } };
    await withServer(200, JSON.stringify({ result: true, requests: { r: status } }), async (c) => {
      const found = await c.find(['r']);
      expect(found.requests.r?.results.errors).toEqual([{ error: 'ERR_NEW', contact: { id: null, email: null, phone: null, userId: null }, humanError: '' }]);
      expect(isContactErrorCode(found.requests.r!.results.errors[0]!.error)).toBe(false);
    });
    await withServer(200, JSON.stringify({ result: true, requests: { r: { ...status, id: undefined } } }), async (c) => {
      expect(await failure(c.find(['r']))).toMatchObject({ code: 'WOOXY_BAD_RESPONSE' });
    });
  });

  it('PHP’s empty map `[]` is read as no requests', async () => {
    await withServer(200, '{"result":true,"requests":[],"errors":[]}', async (c) => {
      expect(await c.find(['r'])).toEqual({ requests: {}, missing: ['r'] });
    });
  });

  it('a 503 page from a proxy is a retryable WOOXY_SERVER_ERROR', async () => {
    await withServer(503, '<html>maintenance</html>', async (c) => {
      expect(await failure(c.find(['r']))).toMatchObject({ code: 'WOOXY_SERVER_ERROR', retryable: true, attempts: 4 });
    });
  });
});

describe('retry policy', () => {
  it('gives up after maxAttempts with the last error', async () => {
    emulator.setFaults({ serverErrorRate: 1 });
    const e = await failure(client({ retry: { maxAttempts: 3, baseDelayMs: 1 } }).find(['x']));
    expect(e).toMatchObject({ code: 'WOOXY_SERVER_ERROR', attempts: 3, messages: ['Internal server error'] });
    expect(apiCalls()).toBe(3);
  });

  it('backs off exponentially with full jitter between attempts', async () => {
    emulator.setFaults({ serverErrorRate: 1 });
    const delays: number[] = [];
    const c = client({ retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 250 }, random: () => 0.999, sleep: async (ms) => void delays.push(ms) });
    await failure(c.find(['x']));
    expect(delays).toEqual([99, 199, 249, 249]);
  });

  it('honours Retry-After instead of its own delay', async () => {
    emulator.setFaults({ retryAfterSeconds: 2, next: [{ kind: 'rateLimit', count: 1 }] });
    const delays: number[] = [];
    const answer = await client({ sleep: async (ms) => void delays.push(ms) }).find(['x']);
    expect(answer.missing).toEqual(['x']);
    expect(delays).toEqual([2_000]);
  });

  it('really waits for Retry-After (fractions of a second tolerated)', async () => {
    emulator.setFaults({ retryAfterSeconds: 0.3, next: [{ kind: 'rateLimit', count: 1 }] });
    const started = performance.now();
    await client().find(['x']);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('does not hold a limiter slot while sleeping between attempts', async () => {
    const limiter = createLimiter({ concurrency: 1 });
    let wake!: () => void;
    let sleeping!: () => void;
    const asleep = new Promise<void>((resolve) => (sleeping = resolve));
    const c = client({ limiter, sleep: () => new Promise<void>((resolve) => ((wake = resolve), sleeping())) });
    emulator.setFaults({ next: [{ kind: 'serverError', count: 1, endpoint: 'request/find' }] });
    const first = c.find(['a']);
    await asleep;
    expect(limiter.inFlight).toBe(0);
    // With the only slot free, another call goes through while the first one sleeps.
    expect(await c.add({ contactListId: LIST_ID, contacts: [{ userId: 'u1' }] })).toMatchObject({ attempts: 1 });
    wake();
    expect(await first).toEqual({ requests: {}, missing: ['a'] });
  });

  it('a caller’s signal aborts a call waiting to retry', async () => {
    emulator.setFaults({ serverErrorRate: 1 });
    const controller = new AbortController();
    const c = client({ retry: { maxAttempts: 10, baseDelayMs: 60_000, maxDelayMs: 60_000 }, random: () => 1 });
    const call = c.find(['x'], { signal: controller.signal });
    await waitFor(() => apiCalls() === 1, { message: 'first attempt' });
    controller.abort(new Error('shutting down'));
    await expect(call).rejects.toThrow('shutting down');
  });
});

describe('limits are checked before sending', () => {
  const contacts = Array.from({ length: 101 }, (_, i) => ({ userId: `u${i}` }));
  it.each([
    ['add of 101 contacts', (c: WooxyClient) => c.add({ contactListId: LIST_ID, contacts })],
    ['update of 101 contacts', (c: WooxyClient) => c.update({ contactListId: LIST_ID, contacts: contacts.map((x) => ({ ...x, contact: x.userId })) })],
    ['remove of 101 records in all', (c: WooxyClient) => c.remove({ contactListId: LIST_ID, emails: Array(50).fill('a@example.com'), phoneNumbers: Array(50).fill('+3725550000'), userIds: ['u'] })],
    ['find of 101 ids', (c: WooxyClient) => c.find(contacts.map((x) => x.userId))],
  ])('%s → WOOXY_LIMIT_EXCEEDED, nothing sent', async (_, call) => {
    const e = await failure(call(client()));
    expect(e).toMatchObject({ code: 'WOOXY_LIMIT_EXCEEDED', retryable: false });
    expect(e.messages[0]).toMatch(/^101 .* the limit is 100/);
    expect(apiCalls()).toBe(0);
  });

  it('exactly 100 is allowed', async () => {
    await client().add({ contactListId: LIST_ID, contacts: contacts.slice(0, 100) });
    expect(apiCalls()).toBe(1);
  });
});

describe('the access token stays secret', () => {
  it('is scrubbed from the messages the vendor echoes it in, and from logs', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'debug', pretty: false, destination });
    const errors: WooxyError[] = [];
    for (const fault of [{ revokedTokens: [TOKEN] }, { authError: 'checkFailed' as const }, { authError: 'noMatches' as const }]) {
      emulator.reset();
      emulator.setFaults(fault);
      errors.push(await failure(client({ logger }).find(['x'])));
      // The emulator did echo the token, as the vendor does: the scrubbing is what keeps it out.
      expect(emulator.requestLog()[0]?.errors.join(' ')).toContain(TOKEN);
    }
    emulator.reset();
    emulator.setFaults({ next: [{ kind: 'serverError', count: 1 }] });
    await client({ logger }).find(['x']);

    expect(errors.map((e) => e.messages[0])).toEqual([
      'no matches found for access token [redacted]',
      'access token check failed for key/secret 1/[redacted]',
      'no matches found for access token [redacted]',
    ]);
    for (const e of errors) {
      expect(e.code).toBe('WOOXY_UNAUTHORIZED');
      expect(inspect(e, { depth: 10 })).not.toContain(TOKEN);
      expect(JSON.stringify(e)).not.toContain(TOKEN);
      expect(e.message).not.toContain(TOKEN);
    }
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.join('')).not.toContain(TOKEN);
  });
});
