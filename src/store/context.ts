import { sql, type RawBuilder } from 'kysely';
import type { DbHandle, Db } from '../db/index.js';

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
  };
}

export type Tables = ReturnType<typeof tables>;

/** What every store operation needs: the Kysely instance (its builder qualifies tables with the schema) and the tables. */
export interface StoreContext {
  readonly db: Db;
  readonly schema: string;
  readonly t: Tables;
}

export function storeContext(handle: Pick<DbHandle, 'db' | 'schema'>): StoreContext {
  return { db: handle.db, schema: handle.schema, t: tables(handle.schema) };
}

/** A JSON document as one parameter: Postgres parses one jsonb far faster than arrays of escaped JSON. */
export function jsonParam(value: unknown): RawBuilder<unknown> {
  return sql`${JSON.stringify(value)}::jsonb`;
}
