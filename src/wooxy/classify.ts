/**
 * Turns one HTTP exchange into a typed outcome. The pages give no status codes, so the body decides first:
 * `result:false` is a failure whatever the status, and a 200 is a success only with a well-formed
 * `result:true` body. The status is the fallback when the body says nothing usable (a proxy's HTML page).
 */
import { ErrorCodes } from '../errors.js';
import { WooxyError, scrubSecret, type WooxyErrorCode } from './errors.js';
import { Messages, isAuthorizationMessage, isDocumentedRejection, isListLevelMessage, isListNotFoundMessage, isRateLimitMessage, isTransientMessage } from './messages.js';
import { failureSchema } from './schemas.js';
import type { Endpoint } from './types.js';

export interface HttpExchange {
  endpoint: Endpoint;
  status: number;
  /** The Retry-After header, if any. */
  retryAfter: string | null;
  bodyText: string;
  /** Scrubbed out of every message. */
  accessToken: string;
  /** For the clock-based form of Retry-After. */
  now?: number;
}

/**
 * `rawMessages` are the service's messages before scrubbing, for the caller's own recognition only (a short
 * token scrubbed out of "No matches found" would otherwise hide it); never store or log them.
 */
export type Classified = { ok: true; body: unknown } | { ok: false; error: WooxyError; rawMessages: string[] };

/** Retry-After as delta-seconds (fractions tolerated) or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.round(seconds * 1000) : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function classifyResponse(x: HttpExchange): Classified {
  const body = parseJson(x.bodyText);
  const retryAfterMs = parseRetryAfter(x.retryAfter, x.now);
  const fail = (code: WooxyErrorCode, retryable: boolean, messages: string[], requestId?: string): Classified => ({
    ok: false,
    rawMessages: messages,
    error: new WooxyError(code, {
      endpoint: x.endpoint,
      retryable,
      messages: messages.map((m) => scrubSecret(m, x.accessToken)),
      status: x.status,
      requestId,
      retryAfterMs,
    }),
  });

  const failure = failureSchema.safeParse(body);
  if (failure.success) {
    // Classify on the raw messages, expose the scrubbed ones.
    const { errors: messages, requestId } = failure.data;
    if (x.status === 429 || messages.some(isRateLimitMessage)) return fail(ErrorCodes.WOOXY_RATE_LIMITED, true, messages, requestId);
    if (messages.some(isAuthorizationMessage)) return fail(ErrorCodes.WOOXY_UNAUTHORIZED, false, messages, requestId);
    if (messages.some(isTransientMessage) || x.status >= 500) return fail(ErrorCodes.WOOXY_SERVER_ERROR, true, messages, requestId);
    if (messages.some(isListNotFoundMessage)) return fail(ErrorCodes.WOOXY_LIST_NOT_FOUND, false, messages, requestId);
    // One list-level message beside contact ones still blocks every contact: the list comes first.
    if (messages.some(isListLevelMessage)) return fail(ErrorCodes.WOOXY_LIST_REJECTED, false, messages, requestId);
    // Only a documented rejection of the data is the data's fault (split, dead-letter). A message no page
    // documents, or none at all, is the service's trouble: a burst of them must not dead-letter anyone.
    if (messages.length > 0 && messages.every(isDocumentedRejection)) return fail(ErrorCodes.WOOXY_VALIDATION, false, messages, requestId);
    return fail(ErrorCodes.WOOXY_UNDOCUMENTED, true, messages.length > 0 ? messages : ['result:false without messages'], requestId);
  }

  const describe = (what: string) => [`${what} (HTTP ${x.status})`];
  if (x.status === 429) return fail(ErrorCodes.WOOXY_RATE_LIMITED, true, describe('too many requests'));
  if (x.status >= 500) return fail(ErrorCodes.WOOXY_SERVER_ERROR, true, describe(Messages.internal));
  if (x.status === 401 || x.status === 403) return fail(ErrorCodes.WOOXY_UNAUTHORIZED, false, describe('unauthorized'));
  // An answer we cannot read says nothing about our data: transient, retried with backoff.
  if (x.status < 200 || x.status >= 300) return fail(ErrorCodes.WOOXY_BAD_RESPONSE, true, describe('unexpected status'));
  if (body === undefined) return fail(ErrorCodes.WOOXY_BAD_RESPONSE, true, describe('response is not JSON'));
  return { ok: true, body };
}
