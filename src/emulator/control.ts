/**
 * Inspection and control endpoints under /_emulator/, for tests, the demo and the benchmarks. No token: the
 * server binds to loopback only. Every route mirrors a method of the in-process handle (index.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { readBody } from './api.js';
import { faultsPatchSchema, listConfigSchema } from './config.js';
import type { EmulatorEngine } from './engine.js';
import { toStatus } from './requests.js';

export const CONTROL_PREFIX = '/_emulator';

type Handler = (engine: EmulatorEngine, params: string[], body: unknown, query: URLSearchParams) => Promise<[number, unknown]> | [number, unknown];

const advanceSchema = z.object({ ms: z.number().min(0).default(0), days: z.number().min(0).default(0) }).strict();
const idleSchema = z.object({ timeoutMs: z.number().int().min(1).max(600_000).default(10_000) }).strict();

const routes: { method: string; path: RegExp; handler: Handler }[] = [
  { method: 'GET', path: /^\/health$/, handler: () => [200, { ok: true }] },
  { method: 'GET', path: /^\/stats$/, handler: (e) => [200, e.stats()] },
  {
    method: 'GET',
    path: /^\/requests$/,
    handler: (e, _p, _b, q) => {
      const limit = Number(q.get('limit') ?? Infinity);
      const log = e.recorder.log;
      return [200, Number.isFinite(limit) ? log.slice(-Math.max(0, limit)) : log];
    },
  },
  {
    method: 'GET',
    path: /^\/requests\/([^/]+)$/,
    handler: (e, [id]) => {
      e.purge();
      const r = e.book.get(id ?? '');
      return r ? [200, toStatus(r)] : [404, { error: `no request ${id}` }];
    },
  },
  { method: 'GET', path: /^\/webhooks$/, handler: (e) => [200, e.webhooks.log] },
  { method: 'GET', path: /^\/lists$/, handler: (e) => [200, e.lists()] },
  {
    method: 'PUT',
    path: /^\/lists\/([^/]+)$/,
    handler: (e, [id], body) => {
      e.defineList(listConfigSchema.parse({ ...(body as object), id }));
      return [200, e.lists().find((l) => l.id === id)];
    },
  },
  {
    method: 'GET',
    path: /^\/lists\/([^/]+)\/contacts$/,
    handler: (e, [id]) => {
      const contacts = e.contacts(id ?? '');
      return contacts ? [200, contacts] : [404, { error: `no list ${id}` }];
    },
  },
  { method: 'GET', path: /^\/faults$/, handler: (e) => [200, e.faults] },
  { method: 'POST', path: /^\/faults$/, handler: (e, _p, body) => [200, e.setFaults(faultsPatchSchema.parse(body ?? {}))] },
  { method: 'GET', path: /^\/clock$/, handler: (e) => [200, { now: new Date(e.clock.now()).toISOString(), offsetMs: e.clock.offsetMs }] },
  {
    method: 'POST',
    path: /^\/clock\/advance$/,
    handler: (e, _p, body) => {
      const { ms, days } = advanceSchema.parse(body ?? {});
      e.advanceClock(ms + days * 86_400_000);
      return [200, { now: new Date(e.clock.now()).toISOString(), offsetMs: e.clock.offsetMs }];
    },
  },
  { method: 'POST', path: /^\/process$/, handler: (e) => [200, { processed: e.processNow() }] },
  {
    method: 'POST',
    path: /^\/idle$/,
    handler: async (e, _p, body) => {
      const { timeoutMs } = idleSchema.parse(body ?? {});
      try {
        await e.idle(timeoutMs);
        return [200, { idle: true }];
      } catch (err) {
        return [504, { idle: false, error: (err as Error).message }];
      }
    },
  },
  {
    method: 'POST',
    path: /^\/reset$/,
    handler: (e) => {
      e.reset();
      return [200, { ok: true }];
    },
  },
];

export async function handleControl(engine: EmulatorEngine, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(path, 'http://emulator');
  const sub = url.pathname.slice(CONTROL_PREFIX.length) || '/';
  let status: number;
  let payload: unknown;
  const matching = routes.filter((r) => r.path.test(sub));
  const route = matching.find((r) => r.method === req.method);
  if (!route) {
    [status, payload] = matching.length > 0 ? [405, { error: `${req.method} not allowed` }] : [404, { error: `no route ${url.pathname}` }];
  } else {
    try {
      const { text } = await readBody(req, 1024 * 1024);
      const body = text.trim() === '' ? undefined : (JSON.parse(text) as unknown);
      const params = (sub.match(route.path) ?? []).slice(1).map((p) => decodeURIComponent(p));
      [status, payload] = await route.handler(engine, params, body, url.searchParams);
    } catch (e) {
      const message = e instanceof z.ZodError ? z.prettifyError(e) : (e as Error).message;
      [status, payload] = [400, { error: message }];
    }
  }
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(payload));
}
