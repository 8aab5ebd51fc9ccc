/** The Wooxy side of the connector: the only module that talks HTTP to Wooxy. */
export * from './types.js';
export { Messages, ACCESS_TOKEN_HEADER, isAuthorizationMessage, isTransientMessage, isListNotFoundMessage, isListLevelMessage, isRateLimitMessage, tooManyRequests, type ValidationMode } from './messages.js';
export * from './rules.js';
export { validateContact, filledIdentifiers, unknownContactKeys, type ContactContext } from './validate.js';
export { validateAddRequest, validateUpdateRequest, validateRemoveRequest, validateFindRequest, removeRecordCount, type RequestContext } from './validate-request.js';
export { createLimiter, type WooxyLimiter, type LimiterOptions } from './limiter.js';
export { WooxyError, isWooxyError, scrubSecret, type WooxyErrorCode, type WooxyErrorDetails } from './errors.js';
export { classifyResponse, parseRetryAfter, type HttpExchange, type Classified } from './classify.js';
export { DEFAULT_RETRY_POLICY, retryDelay, type RetryPolicy, type Sleep } from './backoff.js';
export { WooxyClient, DEFAULT_TIMEOUT_MS, DEFAULT_TIMEOUT_GRACE_MS, type WooxyClientOptions, type CallOptions, type Accepted } from './client.js';
