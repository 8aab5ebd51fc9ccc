import { backoffDelay, type BackoffPolicy } from '../lib/backoff.js';
import { sleep } from '../lib/sleep.js';
import { PgCodes } from '../errors.js';

/** A transaction that lost a race Postgres resolved by rolling it back whole: running it again is safe. */
const RACE_CODES = new Set<string>([PgCodes.DEADLOCK_DETECTED, PgCodes.SERIALIZATION_FAILURE]);

/** The server went away or refused the connection: worth another try once it is back. */
const CONNECTION_CODES = new Set<string>(['08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '53300']);
const CONNECTION_ERRNOS = new Set<string>(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const CONNECTION_MESSAGES = /Connection terminated|connection error|timeout exceeded when trying to connect|Client was closed|terminating connection/i;

export function isRaceError(e: unknown): boolean {
  return RACE_CODES.has(codeOf(e) ?? '');
}

export function isConnectionError(e: unknown): boolean {
  const code = codeOf(e);
  if (code !== undefined && (CONNECTION_CODES.has(code) || CONNECTION_ERRNOS.has(code))) return true;
  return e instanceof Error && CONNECTION_MESSAGES.test(e.message);
}

function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export interface RetryOptions {
  /** Attempts in all (default 5). Ignored with `forever`. */
  attempts?: number;
  /**
   * Retry until it succeeds or `signal` aborts: for what must land (a requestId Wooxy accepted) through a
   * database outage. Only for idempotent operations, since a lost COMMIT answer is retried too.
   */
  forever?: boolean;
  /** Also retry connection failures (default: only deadlocks and serialization failures). Idempotent operations only. */
  connection?: boolean;
  /**
   * Retry every error, whatever it is (a full disk, a read-only server after a failover, a trigger a DBA
   * added): for the one write whose loss costs more than any wait, the record of a request Wooxy accepted.
   */
  anyError?: boolean;
  signal?: AbortSignal;
  backoff?: BackoffPolicy;
  /** Told of each failure that is retried. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * The one retry of the project's database operations (graphile-worker's withRetries): a deadlock victim or
 * a serialization failure runs again after a short jittered pause; connection failures too when the
 * operation says it is idempotent. Anything else is thrown at once.
 */
export async function withRetries<T>(operation: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const policy = opts.backoff ?? { baseMs: 50, maxMs: opts.forever ? 30_000 : 2_000, jitter: 'equal' };
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (e) {
      const retryable = opts.anyError === true || isRaceError(e) || (opts.connection === true && isConnectionError(e));
      if (!retryable || (!opts.forever && attempt >= attempts) || opts.signal?.aborted) throw e;
      const delay = backoffDelay(policy, attempt - 1);
      opts.onRetry?.(e, attempt, delay);
      await sleep(delay, opts.signal);
    }
  }
}
