/**
 * The webhook receiver on a real HTTP server, with `apply` recording what it is given (applying a status to
 * the database is test/e2e/security.test.ts's part). Checks the body shapes it reads, and that everything it
 * refuses is answered with a 4xx, counted, logged at most once a minute, and applies nothing.
 */
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startOpsServer } from '../../../src/observability/server.js';
import { createLogger } from '../../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../../src/observability/metrics.js';
import { createWebhookHandler, MAX_WEBHOOK_BODY, WEBHOOK_PATH } from '../../../src/reconcile/webhook.js';
import type { RequestStatus } from '../../../src/wooxy/types.js';

const SECRET = 'wh-0123456789abcdef0123456789';
const status = (id: string, state: 'new' | 'done' | 'fail' = 'done') => ({
  id,
  source: 'API_CREATE',
  status: state,
  webHookUri: null,
  createdAt: '2026-01-01 00:00:00',
  updatedAt: '2026-01-01 00:00:05',
  results: { errors: [], success: [{ id: 'c1', email: 'a@example.com', phone: null, userId: '1' }] },
});

describe('webhook receiver', () => {
  let metrics: Metrics;
  let server: Awaited<ReturnType<typeof startOpsServer>>;
  let clock = 0;
  const applied: RequestStatus[] = [];
  const lines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    metrics = createMetrics();
    const destination = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...c.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)), cb()) });
    const log = createLogger({ level: 'info', destination });
    const handle = createWebhookHandler({ secret: SECRET, log, metrics, now: () => clock, apply: async (s) => (applied.push(s), 'applied') });
    server = await startOpsServer({ host: '127.0.0.1', port: 0, metrics, log, ready: () => ({ ready: true, role: 'leader' }), routes: [{ prefix: WEBHOOK_PATH, handle }] });
  });
  afterAll(() => server.close());
  beforeEach(() => {
    applied.length = 0;
    lines.length = 0;
  });

  const post = async (path: string, body: string) => {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method: 'POST', body });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const hook = (body: unknown) => post(`${WEBHOOK_PATH}${SECRET}`, typeof body === 'string' ? body : JSON.stringify(body));
  const rejected = async (): Promise<Record<string, number>> => Object.fromEntries((await metrics.webhookRejected.get()).values.map((v) => [String(v.labels.reason), v.value]));
  const refusalLines = () => lines.filter((l) => /refused|cut off/.test(String(l.msg)));

  it('applies a bare status object, as the emulator and Wooxy send it', async () => {
    expect(await hook(status('r1'))).toEqual({ status: 200, json: { ok: true, outcome: 'applied', outcomes: { r1: 'applied' } } });
    expect(applied.map((s) => s.id)).toEqual(['r1']);
  });

  it('applies every status of a list', async () => {
    expect(await hook([status('r1'), status('r2', 'fail')])).toEqual({ status: 200, json: { ok: true, outcomes: { r1: 'applied', r2: 'applied' } } });
    expect(applied.map((s) => [s.id, s.status])).toEqual([['r1', 'done'], ['r2', 'fail']]);
  });

  it('applies every status of a request/find answer', async () => {
    const answer = { result: true, requests: { r3: status('r3'), r4: status('r4', 'new') }, errors: [] };
    expect(await hook(answer)).toMatchObject({ status: 200, json: { ok: true, outcomes: { r3: 'applied', r4: 'applied' } } });
    expect(applied.map((s) => s.id)).toEqual(['r3', 'r4']);
    // Normalised like a polled status: absent result lists become empty ones.
    await hook({ result: true, requests: { r5: { ...status('r5'), results: [] } }, errors: [] });
    expect(applied.at(-1)?.results).toEqual({ errors: [], success: [] });
  });

  it('refuses, and applies nothing of, a body with one bad status, an empty one, or anything else', async () => {
    const before = (await rejected()).body ?? 0;
    for (const body of [
      [status('ok'), { ...status('bad'), status: 'exploded' }],
      { result: true, requests: { ok: status('ok'), bad: { id: 'bad' } }, errors: [] },
      { result: true, requests: {}, errors: [] },
      { result: true, requests: [], errors: [] },
      { result: false, errors: ['No matches found'] },
      [],
      '{"id":',
      'null',
      '"done"',
    ]) {
      expect((await hook(body)).status, JSON.stringify(body)).toBe(400);
    }
    expect(applied).toEqual([]);
    expect((await rejected()).body).toBe(before + 9);
  });

  it('refuses every shape without the secret', async () => {
    const answer = { result: true, requests: { r6: status('r6') }, errors: [] };
    expect((await post(`${WEBHOOK_PATH}wrong`, JSON.stringify(answer))).status).toBe(404);
    expect((await post(`${WEBHOOK_PATH}`, JSON.stringify([status('r6')]))).status).toBe(404);
    expect((await post(`${WEBHOOK_PATH}${SECRET}x`, JSON.stringify(status('r6')))).status).toBe(404);
    expect(applied).toEqual([]);
  });

  it('a path that is not valid percent-encoding is a 400, not a 500', async () => {
    const before = (await rejected()).path ?? 0;
    expect(await post(`${WEBHOOK_PATH}%ZZ`, JSON.stringify(status('r7')))).toEqual({ status: 400, json: { error: 'malformed path' } });
    expect(await post(`${WEBHOOK_PATH}${SECRET}%E0%A4%A`, JSON.stringify(status('r7')))).toMatchObject({ status: 400 });
    expect((await rejected()).path).toBe(before + 2);
    expect(lines.filter((l) => l.msg === 'ops server request failed')).toEqual([]);
    expect(applied).toEqual([]);
  });

  it('a body over the limit is a 413, whether its length is announced or it is sent in chunks', async () => {
    const before = (await rejected()).size ?? 0;
    const big = JSON.stringify([status('r8')]).padEnd(MAX_WEBHOOK_BODY + 10, ' ');
    expect(await hook(big)).toEqual({ status: 413, json: { error: `body over ${MAX_WEBHOOK_BODY} bytes` } });
    // Chunked: no Content-Length, the limit is found while reading.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: `${WEBHOOK_PATH}${SECRET}`, method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 20; i++) req.write(Buffer.alloc(MAX_WEBHOOK_BODY / 10, 0x20));
      req.end();
    });
    expect(chunked).toBe(413);
    // One that announces more than is worth reading is answered at once, and the connection closed.
    const announced = await new Promise<{ code: number; connection: string | undefined }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: `${WEBHOOK_PATH}${SECRET}`, method: 'POST', headers: { 'Content-Length': String(64 * MAX_WEBHOOK_BODY) } }, (res) => {
        res.resume();
        resolve({ code: res.statusCode ?? 0, connection: res.headers.connection });
      });
      req.on('error', reject);
      req.write('[');
    });
    expect(announced).toEqual({ code: 413, connection: 'close' });
    // One that streams on past 16 MB is cut off: the connection is closed, not left blocked.
    const endless = await new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: `${WEBHOOK_PATH}${SECRET}`, method: 'POST' }, (res) => {
        res.resume();
        resolve(`answered ${res.statusCode}`);
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      const chunk = Buffer.alloc(MAX_WEBHOOK_BODY, 0x20);
      const pump = () => {
        while (req.write(chunk));
        req.once('drain', pump);
      };
      pump();
    });
    expect(endless).toMatch(/^(ECONNRESET|EPIPE)$/);
    expect((await rejected()).size).toBe(before + 4);
    expect(lines.filter((l) => l.msg === 'ops server request failed')).toEqual([]);
    expect(applied).toEqual([]);
    // And the server still answers.
    expect((await hook(status('r9'))).status).toBe(200);
  });

  it('counts every wrong secret but logs it at most once a minute, with how many were refused', async () => {
    clock = 10 * 60_000; // well past any earlier line
    const before = (await rejected()).secret ?? 0;
    for (let i = 0; i < 5; i++) await post(`${WEBHOOK_PATH}guess-${i}`, '{}');
    expect((await rejected()).secret).toBe(before + 5);
    expect(refusalLines()).toHaveLength(1);
    // Its count includes the refusals the earlier tests made within their minute.
    expect(refusalLines()[0]).toMatchObject({ level: 'warn', reason: 'secret', refused: expect.any(Number), msg: 'webhook call with a wrong secret refused' });

    clock += 59_000;
    await post(`${WEBHOOK_PATH}guess-5`, '{}');
    expect(refusalLines()).toHaveLength(1);
    clock += 1_000;
    await post(`${WEBHOOK_PATH}guess-6`, '{}');
    expect(refusalLines()).toHaveLength(2);
    // The five refused since the first line: four silently, and this one.
    expect(refusalLines()[1]).toMatchObject({ reason: 'secret', refused: 6, sinceSeconds: 60 });
    expect(JSON.stringify(lines)).not.toContain(SECRET);
  });
});
