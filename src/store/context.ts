/**
 * src/store/ holds every statement on the connector's own tables; the stages call named operations. The
 * rules those statements keep are written beside them (capture.ts: coalescing; delivery.ts: claims, marks,
 * records; results.ts: applying answers). One rule spans them all:
 *
 * LOCK ORDER. A transaction that locks rows of several of these tables takes them in this order, and the
 * rows of one table in (mapping, source_key) order:
 *   1. the writer turn (an advisory lock: the stream's writes, snapshot chunks, and every change of a
 *      removal hold: the guard's and the operator's, guard.ts)
 *   2. a request row (result application: the request decides whether anything happens at all)
 *   3. contact_state rows
 *   4. outbox rows, pending and in flight
 *   5. removal_guard rows (then removal_decisions, insert-only)
 *   6. dead_letters rows
 * History rows (history.ts) take no part in it: they are only inserted (no unique key: an insert waits for no
 * one), and deleted by pruning once nothing else touches them.
 * Claims never wait for a row (FOR UPDATE SKIP LOCKED), so they cannot close a cycle. Within one statement
 * Postgres does not promise the order in which its parts touch rows: a statement with several data-modifying
 * parts reads the earlier tables' parts first (a part that is read runs before one that is not), and every
 * transaction is retried whole after a deadlock all the same (transaction() and withRetries in tx.ts and
 * retry.ts), so a cycle costs a retry, never a lost write.
 */
import { sql, type RawBuilder } from 'kysely';
import type { DbHandle, Db } from '../db/index.js';

/** The lock order's (mapping, source_key) order, for sorting what a statement will lock in JavaScript. */
export function byContact(a: { mapping: string; key: string }, b: { mapping: string; key: string }): number {
  if (a.mapping !== b.mapping) return a.mapping < b.mapping ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The connector's tables in its schema, as SQL identifiers: the one place they are named for raw SQL. */
export function tables(schema: string) {
  const id = (name: string) => sql.id(schema, name);
  return {
    state: id('contact_state'),
    outbox: id('outbox'),
    repl: id('replication_state'),
    requests: id('requests'),
    dead: id('dead_letters'),
    progress: id('snapshot_progress'),
    leader: id('leader'),
    fence: id('fence'),
    guard: id('removal_guard'),
    decisions: id('removal_decisions'),
    history: id('history'),
  };
}

export type Tables = ReturnType<typeof tables>;

/**
 * What every store operation needs: the Kysely instance (its builder qualifies tables with the schema), the
 * tables, and the source database for the few decisions that must look at the mapped tables themselves.
 */
export interface StoreContext {
  readonly db: Db;
  readonly schema: string;
  readonly t: Tables;
  /** Whether the statements that resolve a contact's call also write its history row (history.keepDays > 0). */
  readonly history: boolean;
  /** The source database: `db`'s own unless postgres.stateUrl puts the state elsewhere (then a transaction on `db` cannot see it). */
  readonly source: Db;
  /** True when the source is another database than the state's. */
  readonly separate: boolean;
}

export function storeContext(handle: Pick<DbHandle, 'db' | 'schema'> & Partial<Pick<DbHandle, 'source' | 'separate'>>, opts: { history?: boolean } = {}): StoreContext {
  return {
    db: handle.db,
    schema: handle.schema,
    t: tables(handle.schema),
    history: opts.history ?? true,
    source: handle.source?.db ?? handle.db,
    separate: handle.separate ?? false,
  };
}

/** A JSON document as one parameter: Postgres parses one jsonb far faster than arrays of escaped JSON. */
export function jsonParam(value: unknown): RawBuilder<unknown> {
  return sql`${JSON.stringify(value)}::jsonb`;
}
