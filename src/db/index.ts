import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './types.js';

export type { Database } from './types.js';
export type Db = Kysely<Database>;

export interface DbOptions {
  /** Where the connector's own tables live (postgres.stateUrl, else postgres.url). */
  url: string;
  schema: string;
  poolSize?: number;
  applicationName?: string;
  /** Connection start-up options for every session (see durableSessionOptions). */
  options?: string;
  /**
   * The source database (postgres.url) when the state lives elsewhere: the mapped tables, the catalog, the
   * slot and the publication are read there, and heartbeats and watermark messages written there. Unset:
   * the source is the state's own database, through the same pool.
   */
  source?: { url: string; poolSize?: number; options?: string };
  /** Give up connecting after this long, on both pools (default: wait as long as the OS does, which is right for the connector). */
  connectTimeoutMs?: number;
}

/** The source database: a Kysely instance for raw SQL on the mapped tables and the catalog, and its pool. */
export interface SourceHandle {
  db: Db;
  pool: pg.Pool;
}

export interface DbHandle {
  /** The connector's own tables (the builder qualifies them with the schema). */
  db: Db;
  pool: pg.Pool;
  schema: string;
  /** The source database: the same pool as `db` unless postgres.stateUrl puts the state elsewhere. */
  source: SourceHandle;
  /** True when the state lives in another database than the source (postgres.stateUrl). */
  separate: boolean;
  close: () => Promise<void>;
}

function createPool(url: string, max: number, applicationName: string, options: string | undefined, connectTimeoutMs?: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: applicationName,
    ...(options ? { options } : {}),
    ...(connectTimeoutMs ? { connectionTimeoutMillis: connectTimeoutMs } : {}),
  });
  // A connection that loses its server (a restart, a failover) emits 'error'. pg forwards it to the pool only
  // while the client is idle in the pool; a client checked out between two statements of a transaction
  // has no listener, and an unhandled 'error' kills the process. Every client gets one for its whole life:
  // the statement in progress still fails, and the broken client is discarded when it is released.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/**
 * One pool for the connector's state, and one for the source when the state lives elsewhere. Queries on the
 * state are schema-qualified through Kysely's withSchema, so the connector's tables never depend on a
 * search_path.
 */
export function createDb(options: DbOptions): DbHandle {
  const applicationName = options.applicationName ?? 'wooxy-cdc';
  const pool = createPool(options.url, options.poolSize ?? 5, applicationName, options.options, options.connectTimeoutMs);
  const base = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const db = base.withSchema(options.schema);
  let source: SourceHandle = { db: base, pool };
  let sourceDb: Kysely<Database> | null = null;
  const separate = options.source !== undefined;
  if (options.source) {
    const sourcePool = createPool(options.source.url, options.source.poolSize ?? 3, `${applicationName} source`, options.source.options, options.connectTimeoutMs);
    sourceDb = new Kysely<Database>({ dialect: new PostgresDialect({ pool: sourcePool }) });
    source = { db: sourceDb, pool: sourcePool };
  }
  let closed = false;
  return {
    db,
    pool,
    schema: options.schema,
    source,
    separate,
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all([db.destroy(), sourceDb?.destroy()]);
    },
  };
}

/** What the configuration says about where things live (postgres.url, postgres.stateUrl). */
export interface PlacementConfig {
  url: string;
  stateUrl?: string | undefined;
  schema: string;
  applicationName: string;
}

/** The state's connection string: postgres.stateUrl when set, else the source's. */
export function stateUrlOf(pg: Pick<PlacementConfig, 'url' | 'stateUrl'>): string {
  return pg.stateUrl ?? pg.url;
}

/**
 * DbOptions for a command or the connector: the state where postgres.stateUrl says (the source database when
 * unset), and the source apart when they differ.
 */
export function dbOptions(
  pg: PlacementConfig,
  opts: { purpose?: string; poolSize?: number; options?: string; sourcePoolSize?: number; connectTimeoutMs?: number } = {},
): DbOptions {
  const applicationName = opts.purpose ? `${pg.applicationName} ${opts.purpose}` : pg.applicationName;
  const separate = pg.stateUrl !== undefined && pg.stateUrl !== pg.url;
  return {
    url: stateUrlOf(pg),
    schema: pg.schema,
    poolSize: opts.poolSize,
    applicationName,
    options: opts.options,
    connectTimeoutMs: opts.connectTimeoutMs,
    ...(separate ? { source: { url: pg.url, poolSize: opts.sourcePoolSize } } : {}),
  };
}
