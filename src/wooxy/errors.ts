import { CdcError, type ErrorCode } from '../errors.js';
import type { Endpoint } from './types.js';

export type WooxyErrorCode = Extract<
  ErrorCode,
  | 'WOOXY_VALIDATION'
  | 'WOOXY_UNAUTHORIZED'
  | 'WOOXY_RATE_LIMITED'
  | 'WOOXY_SERVER_ERROR'
  | 'WOOXY_TIMEOUT'
  | 'WOOXY_NETWORK'
  | 'WOOXY_LIMIT_EXCEEDED'
  | 'WOOXY_BAD_RESPONSE'
  | 'WOOXY_LIST_NOT_FOUND'
  | 'WOOXY_LIST_REJECTED'
  | 'WOOXY_UNDOCUMENTED'
>;

export interface WooxyErrorDetails {
  endpoint: Endpoint;
  /** Whether another attempt may succeed; the client has already spent its attempts when it throws. */
  retryable: boolean;
  /** The service's messages (or our own description), with the access token scrubbed out. */
  messages: string[];
  /** HTTP status, when a response arrived. */
  status?: number;
  /** The request id the service gave a rejected add/update/remove, when it gave one. */
  requestId?: string;
  /** The service's Retry-After, in milliseconds. */
  retryAfterMs?: number;
  /**
   * The request may have reached Wooxy and may still be processed (a timeout, a connection lost after
   * sending): not a failure but an unknown. Its contacts must wait, then be sent again from their state.
   */
  outcomeUnknown?: boolean;
  cause?: unknown;
}

const SUMMARY_MESSAGES = 3;

/**
 * A failed Wooxy call. Match on `code`; `retryable` says whether the failure is the service's (retry) or the
 * request's or the account's (do not). Never carries the access token: messages are scrubbed before they
 * reach this constructor.
 */
export class WooxyError extends CdcError {
  declare readonly code: WooxyErrorCode;
  readonly endpoint: Endpoint;
  readonly retryable: boolean;
  readonly messages: string[];
  readonly status: number | undefined;
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly outcomeUnknown: boolean;
  /** Attempts made before giving up (set by the client's retry loop). */
  attempts = 1;

  constructor(code: WooxyErrorCode, details: WooxyErrorDetails) {
    const shown = details.messages.slice(0, SUMMARY_MESSAGES).join('; ');
    const more = details.messages.length > SUMMARY_MESSAGES ? ` (and ${details.messages.length - SUMMARY_MESSAGES} more)` : '';
    const status = details.status === undefined ? '' : ` [HTTP ${details.status}]`;
    super(code, `Wooxy ${details.endpoint}${status}: ${shown}${more}`, { cause: details.cause });
    this.name = 'WooxyError';
    this.endpoint = details.endpoint;
    this.retryable = details.retryable;
    this.messages = details.messages;
    this.status = details.status;
    this.requestId = details.requestId;
    this.retryAfterMs = details.retryAfterMs;
    this.outcomeUnknown = details.outcomeUnknown ?? false;
  }
}

export function isWooxyError(e: unknown, code?: WooxyErrorCode): e is WooxyError {
  return e instanceof WooxyError && (code === undefined || e.code === code);
}

/**
 * Removes a secret from text the service sent back. The vendor echoes the token in
 * "no matches found for access token {accessToken}" and "access token check failed for key/secret …".
 */
export function scrubSecret(text: string, secret: string): string {
  return secret === '' ? text : text.split(secret).join('[redacted]');
}
