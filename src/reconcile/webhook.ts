import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { requestStatusSchema } from '../wooxy/schemas.js';
import type { RequestStatus } from '../wooxy/types.js';
import type { ApplyOutcome } from './apply.js';

export const WEBHOOK_PATH = '/webhooks/wooxy/';
const MAX_BODY = 1024 * 1024;

export interface WebhookOptions {
  secret: string;
  apply: (status: RequestStatus) => Promise<ApplyOutcome>;
  log: Logger;
  metrics: Metrics;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Compares in constant time whatever the lengths (both sides hashed first). */
export function secretMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The receiver of Wooxy's status POSTs, at /webhooks/wooxy/<secret>. The secret is the only credential the
 * vendor's webhooks can carry, so it must be unguessable, and is compared in constant time. A wrong secret is
 * a 404 (nothing here to find), a malformed body a 400; neither changes any state. A status also learnt by
 * polling is applied once (the request row is locked and checked).
 */
export function createWebhookHandler(opts: WebhookOptions) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const reply = (code: number, body: object) => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const given = decodeURIComponent((req.url ?? '').split('?')[0]!.slice(WEBHOOK_PATH.length));
    if (!secretMatches(given, opts.secret)) {
      opts.metrics.webhookRejected.inc({ reason: 'secret' });
      opts.log.warn({ remote: req.socket.remoteAddress }, 'webhook call with a wrong secret refused');
      return reply(404, { error: 'not found' });
    }
    if (req.method !== 'POST') return reply(405, { error: 'POST only' });
    const text = await readBody(req);
    let parsed: ReturnType<typeof requestStatusSchema.safeParse> | null = null;
    try {
      parsed = text === null ? null : requestStatusSchema.safeParse(JSON.parse(text));
    } catch {
      parsed = null;
    }
    if (!parsed?.success) {
      opts.metrics.webhookRejected.inc({ reason: 'body' });
      opts.log.warn({ remote: req.socket.remoteAddress }, 'webhook call with a malformed body refused');
      return reply(400, { error: 'expected a request status object' });
    }
    const outcome = await opts.apply(parsed.data);
    reply(200, { ok: true, outcome });
  };
}
