/**
 * The typed Wooxy API v3 client: the only code in the project that talks HTTP to Wooxy.
 *
 * Every attempt takes a slot of the shared limiter and gives it back before any backoff sleep, so a call
 * waiting to retry never blocks another call. Limits are checked before sending: a caller that passes more
 * than the vendor allows gets WOOXY_LIMIT_EXCEEDED, never a silent split (splitting is the caller's decision,
 * because each part gets its own requestId to reconcile).
 */
import type { Logger } from '../observability/logger.js';
import { ErrorCodes } from '../errors.js';
import { sleep as defaultSleep, type Sleep } from '../lib/sleep.js';
import { DEFAULT_RETRY_POLICY, retryDelay, type RetryPolicy } from './backoff.js';
import { classifyResponse } from './classify.js';
import { WooxyError } from './errors.js';
import type { WooxyLimiter } from './limiter.js';
import { ACCESS_TOKEN_HEADER, Messages } from './messages.js';
import { acceptedSchema, findSchema } from './schemas.js';
import {
  DEFAULT_BASE_URL,
  WooxyLimits,
  type AddContactsRequest,
  type Endpoint,
  type FindResult,
  type RemoveContactsRequest,
  type UpdateContactsRequest,
} from './types.js';

export interface WooxyClientOptions {
  accessToken: string;
  /** The process-wide limiter (createLimiter), shared by every client and caller. */
  limiter: WooxyLimiter;
  /** Default https://api.wooxy.com/v3; an emulator's `url` fits here as is. */
  baseUrl?: string;
  /** Per attempt, from sending the request to reading the whole answer. Default 30 000 ms. */
  timeoutMs?: number;
  /**
   * After an attempt whose outcome is unknown (it timed out, or the connection broke after it was sent), how
   * long Wooxy is assumed to still work on it: its limiter slot stays taken that long, so Wooxy never sees
   * more of our calls at once than the limiter allows. Default 30 000 ms.
   */
  timeoutGraceMs?: number;
  retry?: Partial<RetryPolicy>;
  logger?: Logger;
  /** Seams for tests: how to wait between attempts, and the jitter source. */
  sleep?: Sleep;
  random?: () => number;
}

export interface CallOptions {
  /** Aborts the call: a queued attempt leaves the queue, a running one is cancelled, a backoff sleep ends. */
  signal?: AbortSignal;
  /**
   * Runs in the limiter slot right before each attempt is sent (delivery renews its claims there); when it
   * throws, the call ends with that error and nothing is sent.
   */
  beforeAttempt?: (attempt: number) => Promise<void>;
}

/** add, update and remove answer "validated and queued"; the outcome comes later (request/find, webhook). */
export interface Accepted {
  requestId: string;
  /** Attempts the call took (1 when the first one succeeded). */
  attempts: number;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_TIMEOUT_GRACE_MS = 30_000;

/** Connection failures that happen before a request is sent: Wooxy has seen nothing, a retry is safe. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

export class WooxyClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly timeoutGraceMs: number;
  readonly retryPolicy: RetryPolicy;
  readonly #accessToken: string;
  readonly #limiter: WooxyLimiter;
  readonly #log: Logger | undefined;
  readonly #sleep: Sleep;
  readonly #random: () => number;

  constructor(options: WooxyClientOptions) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.timeoutGraceMs = options.timeoutGraceMs ?? DEFAULT_TIMEOUT_GRACE_MS;
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    if (!Number.isInteger(this.retryPolicy.maxAttempts) || this.retryPolicy.maxAttempts < 1) {
      throw new RangeError('retry.maxAttempts must be a positive integer');
    }
    this.#accessToken = options.accessToken;
    this.#limiter = options.limiter;
    this.#log = options.logger?.child({ component: 'wooxy-client' });
    this.#sleep = options.sleep ?? defaultSleep;
    this.#random = options.random ?? Math.random;
  }

  async add(request: AddContactsRequest, options: CallOptions = {}): Promise<Accepted> {
    this.#checkLimit('contacts/add', request.contacts.length, WooxyLimits.CONTACTS_PER_CALL, 'contacts');
    return this.#accepted('contacts/add', request, options);
  }

  async update(request: UpdateContactsRequest, options: CallOptions = {}): Promise<Accepted> {
    this.#checkLimit('contacts/update', request.contacts.length, WooxyLimits.CONTACTS_PER_CALL, 'contacts');
    return this.#accepted('contacts/update', request, options);
  }

  async remove(request: RemoveContactsRequest, options: CallOptions = {}): Promise<Accepted> {
    const records = (request.emails?.length ?? 0) + (request.phoneNumbers?.length ?? 0) + (request.userIds?.length ?? 0);
    this.#checkLimit('contacts/remove', records, WooxyLimits.RECORDS_PER_REMOVE, 'records (emails + phoneNumbers + userIds)');
    return this.#accepted('contacts/remove', request, options);
  }

  /**
   * Statuses of earlier requests. Ids the service does not know (never seen, or past the 7-day retention) are
   * listed in `missing`; "No matches found" is not an error here but an answer with every id missing.
   * An empty `ids` makes no call.
   */
  async find(ids: readonly string[], options: CallOptions = {}): Promise<FindResult> {
    this.#checkLimit('request/find', ids.length, WooxyLimits.IDS_PER_FIND, 'ids');
    if (ids.length === 0) return { requests: {}, missing: [] };
    const { value: requests } = await this.#call('request/find', { ids }, options, {
      parse: (body) => {
        const parsed = findSchema.safeParse(body);
        return parsed.success ? parsed.data.requests : undefined;
      },
      recover: (_error, rawMessages) => (isNoMatches(rawMessages) ? {} : undefined),
    });
    return { requests, missing: ids.filter((id) => !Object.prototype.hasOwnProperty.call(requests, id)) };
  }

  async #accepted(endpoint: Endpoint, body: object, options: CallOptions): Promise<Accepted> {
    const { value, attempts } = await this.#call(endpoint, body, options, {
      parse: (json) => {
        const parsed = acceptedSchema.safeParse(json);
        return parsed.success ? parsed.data.requestId : undefined;
      },
    });
    return { requestId: value, attempts };
  }

  #checkLimit(endpoint: Endpoint, count: number, limit: number, what: string): void {
    if (count <= limit) return;
    throw new WooxyError(ErrorCodes.WOOXY_LIMIT_EXCEEDED, {
      endpoint,
      retryable: false,
      messages: [`${count} ${what} in one call; the limit is ${limit}: split the batch before calling`],
    });
  }

  /**
   * The retry loop: attempts in limiter slots, backoff sleeps outside them. An attempt whose outcome is
   * unknown keeps its slot for the grace period first: Wooxy may still be working on it. An add, update or
   * remove with an unknown outcome is not retried here (sending the same contacts again at once could let the
   * older call be applied last); the caller decides, after the grace, from the contacts' current state.
   */
  async #call<T>(endpoint: Endpoint, body: object, options: CallOptions, reader: Reader<T>): Promise<{ value: T; attempts: number }> {
    const payload = JSON.stringify(body);
    const { signal, beforeAttempt } = options;
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await this.#limiter.run(async () => {
          await beforeAttempt?.(attempt);
          try {
            return await this.#attempt(endpoint, payload, attempt, reader, signal);
          } catch (e) {
            if (e instanceof WooxyError && e.outcomeUnknown && this.timeoutGraceMs > 0) await this.#sleep(this.timeoutGraceMs, signal).catch(() => undefined);
            throw e;
          }
        }, signal);
        return { value, attempts: attempt };
      } catch (e) {
        if (!(e instanceof WooxyError)) throw e;
        e.attempts = attempt;
        const context = { endpoint, attempt, code: e.code, status: e.status, requestId: e.requestId, messages: e.messages };
        if (!e.retryable || attempt >= this.retryPolicy.maxAttempts) {
          // The caller reports the failure, once, with what it means for its contacts.
          this.#log?.debug(context, e.retryable ? 'Wooxy call failed; no attempts left' : 'Wooxy call failed; not retryable');
          throw e;
        }
        const delayMs = retryDelay(this.retryPolicy, attempt, e.retryAfterMs, this.#random);
        this.#log?.info({ ...context, delayMs }, 'Wooxy call failed; retrying');
        await this.#sleep(delayMs, signal);
      }
    }
  }

  async #attempt<T>(endpoint: Endpoint, payload: string, attempt: number, reader: Reader<T>, callerSignal?: AbortSignal): Promise<T> {
    const started = performance.now();
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout;
    let status: number;
    let retryAfter: string | null;
    let bodyText: string;
    try {
      const response = await fetch(`${this.baseUrl}/${endpoint}`, {
        method: 'POST',
        headers: { [ACCESS_TOKEN_HEADER]: this.#accessToken, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: payload,
        signal,
      });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      bodyText = await response.text();
    } catch (e) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      // Only request/find is safe to repeat at once when the outcome is unknown: it changes nothing.
      const readOnly = endpoint === 'request/find';
      if (timeout.aborted) {
        throw new WooxyError(ErrorCodes.WOOXY_TIMEOUT, { endpoint, retryable: readOnly, outcomeUnknown: true, messages: [`no answer within ${this.timeoutMs} ms`], cause: e });
      }
      const sent = !NOT_SENT.has(networkCode(e) ?? '');
      throw new WooxyError(ErrorCodes.WOOXY_NETWORK, { endpoint, retryable: readOnly || !sent, outcomeUnknown: sent, messages: [describeNetworkError(e)], cause: e });
    }

    const outcome = classifyResponse({ endpoint, status, retryAfter, bodyText, accessToken: this.#accessToken });
    const ms = Math.round(performance.now() - started);
    if (!outcome.ok) {
      const recovered = reader.recover?.(outcome.error, outcome.rawMessages);
      if (recovered === undefined) throw outcome.error;
      this.#log?.debug({ endpoint, attempt, status, ms, messages: outcome.error.messages }, 'Wooxy call answered');
      return recovered;
    }
    const value = reader.parse(outcome.body);
    if (value === undefined) {
      throw new WooxyError(ErrorCodes.WOOXY_BAD_RESPONSE, { endpoint, retryable: true, messages: [`unexpected response shape (HTTP ${status})`], status });
    }
    this.#log?.debug({ endpoint, attempt, status, ms, requestId: typeof value === 'string' ? value : undefined }, 'Wooxy call answered');
    return value;
  }
}

/** How a call reads a success body (undefined = malformed), and which failures are in fact answers. */
interface Reader<T> {
  parse: (json: unknown) => T | undefined;
  recover?: (error: WooxyError, rawMessages: string[]) => T | undefined;
}

function isNoMatches(messages: string[]): boolean {
  return messages.length > 0 && messages.every((m) => m === Messages.noMatches);
}

function networkCode(e: unknown): string | undefined {
  const cause = (e as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

/** fetch's "fetch failed" hides the reason in `cause` (ECONNREFUSED, ECONNRESET, ENOTFOUND…). */
function describeNetworkError(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const message = typeof cause?.message === 'string' ? cause.message : e instanceof Error ? e.message : String(e);
  return `connection failed: ${code ?? message}`;
}
