import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './types.js';

export type { Database } from './types.js';
export type Db = Kysely<Database>;

export interface DbOptions {
  url: string;
  schema: string;
  poolSize?: number;
  applicationName?: string;
  /** Connection start-up options for every session (see durableSessionOptions). */
  options?: string;
  /** Give up connecting after this long (default: wait as long as the OS does, which is right for the connector). */
  connectTimeoutMs?: number;
}

export interface DbHandle {
  db: Db;
  pool: pg.Pool;
  schema: string;
  close: () => Promise<void>;
}

/**
 * One pool for the process. Queries are schema-qualified through Kysely's withSchema, so the connector's
 * tables never depend on a search_path.
 */
export function createDb(options: DbOptions): DbHandle {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 5,
    application_name: options.applicationName ?? 'wooxy-cdc',
    ...(options.options ? { options: options.options } : {}),
    ...(options.connectTimeoutMs ? { connectionTimeoutMillis: options.connectTimeoutMs } : {}),
  });
  // A connection that loses its server (a restart, a failover) emits 'error'. pg forwards it to the pool only
  // while the client is idle in the pool; a client checked out between two statements of a transaction
  // has no listener, and an unhandled 'error' kills the process. Every client gets one for its whole life:
  // the statement in progress still fails, and the broken client is discarded when it is released.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }).withSchema(options.schema);
  let closed = false;
  return {
    db,
    pool,
    schema: options.schema,
    close: async () => {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
