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
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that kills the process.
  pool.on('error', () => undefined);
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
