import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { waitFor } from './wait.js';

export interface TestDatabase {
  /** Connection string to this file's own database. */
  url: string;
  database: string;
  /** Unique per call: slot names are cluster-wide, so two files must never share one. */
  slot: string;
  publication: string;
  /** Runs SQL against the test database through a short-lived pool. */
  query: <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;
  /** Drops the slots made in this database, then the database. */
  drop: () => Promise<void>;
  /**
   * A clean start for one test: new slot and publication names, the `users` table created again from `ddl`,
   * and no connector schema.
   */
  reset: (ddl: string) => Promise<void>;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export function adminUrl(): string {
  return inject('pgAdminUrl');
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function adminQuery(text: string, values?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client(adminUrl());
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(prefix = 't'): Promise<TestDatabase> {
  const database = uniqueName(`wooxy_${prefix}`).toLowerCase();
  await adminQuery(`CREATE DATABASE ${database}`);
  const url = withDatabase(adminUrl(), database);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // pool.end() resolves before its clients' sockets close; drop() then terminates every backend of the
  // database, and a client still closing gets 57P01. Without a listener the pool rethrows it, uncaught.
  pool.on('error', () => undefined);
  const db: TestDatabase = {
    url,
    database,
    slot: uniqueName('slot'),
    publication: uniqueName('pub'),
    query: (text, values) => pool.query(text, values),
    reset: async (ddl) => {
      db.slot = uniqueName('slot');
      db.publication = uniqueName('pub');
      await pool.query('DROP TABLE IF EXISTS users');
      await pool.query(ddl);
      await pool.query('DROP SCHEMA IF EXISTS wooxy_cdc CASCADE');
    },
    drop: async () => {
      await pool.end();
      // Active walsenders hold their slots: end every session on the database first.
      await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
      // A terminated walsender releases its slot a moment later: until then the drop fails, and is tried again.
      await waitFor(
        async () => {
          await adminQuery('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1', [database]);
          return true;
        },
        { timeoutMs: 10_000, intervalMs: 100, message: `the slots of ${database} dropped` },
      );
      await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    },
  };
  return db;
}
