import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';
import { CdcError } from '../errors.js';
import type { StoreContext } from './context.js';
import { withRetries, type RetryOptions } from './retry.js';

/** A leader's term: its slot and the epoch the election gave it. Every write of its pipeline carries it. */
export interface Fence {
  readonly slot: string;
  /** The epoch, as Postgres' bigint text. */
  readonly epoch: string;
}

/** SQLSTATE raised by the fence function (migrations/0005_integrity.ts). */
export const FENCED_SQLSTATE = 'WX001';

export function isFenced(e: unknown): boolean {
  return e instanceof CdcError && e.code === 'LEADER_FENCED';
}

export type Trx = Transaction<Database>;

/**
 * Runs `fn` in one transaction, retried whole after a deadlock or serialization failure. With a fence, the
 * transaction's first statement proves the epoch is still current and keeps it so until the commit (an
 * election waits for it); an older epoch fails closed with LEADER_FENCED, which is never retried.
 */
export async function transaction<T>(ctx: StoreContext, fence: Fence | null, fn: (trx: Trx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const settings = Object.entries(opts.settings ?? {}).map(([name, value]) => sql`set_config(${name}, ${value}, true)`);
  return withRetries(async () => {
    try {
      return await ctx.db.transaction().execute(async (trx) => {
        // One round trip for the fence and the transaction's planner settings.
        const first = [...(fence ? [sql`${ctx.t.fence}(${fence.slot}, ${fence.epoch}::bigint)`] : []), ...settings];
        if (first.length > 0) await sql`SELECT ${sql.join(first)}`.execute(trx);
        return fn(trx);
      });
    } catch (e) {
      if ((e as { code?: unknown }).code === FENCED_SQLSTATE) {
        throw new CdcError('LEADER_FENCED', `this instance is no longer the leader: ${(e as Error).message}`, { cause: e });
      }
      throw e;
    }
  }, opts);
}

/**
 * One statement's worth of work: in a fenced transaction when there is a fence, else as it is (a single
 * statement is atomic by itself, and needs no BEGIN and COMMIT round trips).
 */
export async function maybeFenced<T>(ctx: StoreContext, fence: Fence | null, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  return fence ? transaction(ctx, fence, fn) : withRetries(() => fn(ctx.db));
}

/** How much a pruning call deletes: in statements of `batchSize` rows, at most `maxBatches` of them. */
export interface BatchedDeleteOptions {
  /** Rows per DELETE: each statement is a short transaction, whatever the backlog. */
  batchSize?: number;
  /** Statements per call at most; what is left waits for the next call. */
  maxBatches?: number;
}

/**
 * Runs a bounded DELETE (`statement` deletes at most `limit` rows) until one deletes fewer than that, or
 * `maxBatches` ran; each statement on its own, fenced when there is a fence. Returns how many rows went.
 */
export async function deleteInBatches(
  ctx: StoreContext,
  fence: Fence | null,
  opts: BatchedDeleteOptions,
  statement: (limit: number) => RawBuilder<unknown>,
): Promise<number> {
  const batchSize = opts.batchSize ?? 1_000;
  const maxBatches = opts.maxBatches ?? 50;
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const deleted = await maybeFenced(ctx, fence, async (db) => Number((await statement(batchSize).execute(db)).numAffectedRows ?? 0n));
    total += deleted;
    if (deleted < batchSize) break;
  }
  return total;
}

export interface TransactionOptions extends RetryOptions {
  /** Settings for this transaction only (set_config(name, value, true)), e.g. planner switches. */
  settings?: Record<string, string>;
}
