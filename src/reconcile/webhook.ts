import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { findSchema, requestStatusSchema } from '../wooxy/schemas.js';
import type { RequestStatus } from '../wooxy/types.js';
import type { ApplyOutcome } from './apply.js';

export const WEBHOOK_PATH = '/webhooks/wooxy/';
/** A status of 100 contacts with errors is about 25 kB; a megabyte leaves room for a list of them. */
export const MAX_WEBHOOK_BODY = 1024 * 1024;
/** Past this much, a too-large body is cut off rather than read to its end to answer 413 politely. */
const DISCARD_LIMIT = 16 * MAX_WEBHOOK_BODY;
const LOG_INTERVAL_MS = 60_000;

export interface WebhookOptions {
  secret: string;
  apply: (status: RequestStatus) => Promise<ApplyOutcome>;
  log: Logger;
  metrics: Metrics;
  /** Clock of the once-a-minute log lines (tests move it). */
  now?: () => number;
}

/** Why a call was refused: the label of wooxy_cdc_webhook_rejected_total. */
type Refusal = 'secret' | 'path' | 'body' | 'size';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Compares in constant time whatever the lengths (both sides hashed first). */
export function secretMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * Every shape a status can plausibly arrive in: the bare status object Wooxy's webhook sends, a list of them,
 * and request/find's answer ({"result":true,"requests":{"<id>":{…}},"errors":[]}). Each is checked whole
 * before anything is applied, so a malformed body changes nothing.
 */
const webhookBodySchema = z
  .union([requestStatusSchema.transform((s) => [s]), z.array(requestStatusSchema), findSchema.transform((f) => Object.values(f.requests))])
  .refine((statuses) => statuses.length > 0, 'no status in the body');

type Body = { kind: 'ok'; text: string } | { kind: 'too-large'; read: boolean } | { kind: 'cut-off' };

/**
 * Reads the body up to MAX_WEBHOOK_BODY. A larger one is drained without being kept, so the client reads
 * our 413 instead of a reset connection; one announced past DISCARD_LIMIT is not read at all, and one that
 * turns out to be past it while streaming is cut off.
 */
async function readBody(req: IncomingMessage): Promise<Body> {
  const announced = Number(req.headers['content-length'] ?? NaN);
  if (announced > DISCARD_LIMIT) return { kind: 'too-large', read: false };
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > DISCARD_LIMIT) return { kind: 'cut-off' };
    if (size <= MAX_WEBHOOK_BODY) chunks.push(chunk as Buffer);
  }
  return size > MAX_WEBHOOK_BODY ? { kind: 'too-large', read: true } : { kind: 'ok', text: Buffer.concat(chunks).toString('utf8') };
}

/**
 * One warning per reason per minute, whatever the rate of refusals: a scanner hammering the endpoint must
 * not flood the log (the metric counts every call). The line says how many were refused since the last one.
 */
class RefusalLog {
  private readonly last = new Map<Refusal, { at: number; count: number }>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  note(reason: Refusal, remote: string | undefined, message: string): void {
    const entry = this.last.get(reason);
    const now = this.now();
    if (entry && now - entry.at < LOG_INTERVAL_MS) {
      entry.count++;
      return;
    }
    this.log.warn({ reason, remote, refused: (entry?.count ?? 0) + 1, sinceSeconds: entry ? Math.round((now - entry.at) / 1000) : 0 }, message);
    this.last.set(reason, { at: now, count: 0 });
  }
}

/**
 * The receiver of Wooxy's status POSTs, at /webhooks/wooxy/<secret>. The secret is the only credential the
 * vendor's webhooks can carry, so it must be unguessable, and is compared in constant time. A wrong secret is
 * a 404 (nothing here to find), a path that is not valid percent-encoding or a malformed body a 400, a body
 * over MAX_WEBHOOK_BODY a 413; none of them changes any state. A status also learnt by polling is applied
 * once (the request row is locked and checked).
 */
export function createWebhookHandler(opts: WebhookOptions) {
  const refusals = new RefusalLog(opts.log, opts.now ?? Date.now);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Kept before the body is read: a request destroyed mid-body lets go of its socket (req.socket is null).
    const socket = req.socket;
    const remote = socket?.remoteAddress;
    const reply = (code: number, body: object, close = false) => {
      res.writeHead(code, { 'Content-Type': 'application/json', ...(close ? { Connection: 'close' } : {}) });
      res.end(JSON.stringify(body));
    };
    const refuse = (reason: Refusal, code: number, body: object, message: string, close = false, answer = true) => {
      opts.metrics.webhookRejected.inc({ reason });
      refusals.note(reason, remote, message);
      if (answer) reply(code, body, close);
    };

    let given: string;
    try {
      given = decodeURIComponent((req.url ?? '').split('?')[0]!.slice(WEBHOOK_PATH.length));
    } catch {
      return refuse('path', 400, { error: 'malformed path' }, 'webhook call with a malformed path refused');
    }
    if (!secretMatches(given, opts.secret)) return refuse('secret', 404, { error: 'not found' }, 'webhook call with a wrong secret refused');
    if (req.method !== 'POST') return reply(405, { error: 'POST only' });

    const body = await readBody(req);
    if (body.kind === 'cut-off') {
      // Destroying the request does not close its connection: the client would wait, blocked, forever.
      socket?.destroy();
      return refuse('size', 413, {}, 'webhook call with a body over the size limit cut off', true, false);
    }
    if (body.kind === 'too-large') {
      return refuse('size', 413, { error: `body over ${MAX_WEBHOOK_BODY} bytes` }, 'webhook call with a body over the size limit refused', !body.read);
    }
    let statuses: RequestStatus[] | null = null;
    try {
      const parsed = webhookBodySchema.safeParse(JSON.parse(body.text));
      statuses = parsed.success ? parsed.data : null;
    } catch {
      statuses = null;
    }
    if (!statuses) {
      return refuse('body', 400, { error: 'expected a request status, a list of them, or a request/find answer' }, 'webhook call with a malformed body refused');
    }
    const outcomes: Record<string, ApplyOutcome> = {};
    for (const status of statuses) outcomes[status.id] = await opts.apply(status);
    reply(200, statuses.length === 1 ? { ok: true, outcome: outcomes[statuses[0]!.id], outcomes } : { ok: true, outcomes });
  };
}
