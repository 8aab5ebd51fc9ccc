import { parseConfig } from '../../src/config/loader.js';
import type { Config } from '../../src/config/schema.js';
import { Connector, type ConnectorOptions } from '../../src/connector.js';
import { createLogger } from '../../src/observability/logger.js';
import type { TestDatabase } from './pg.js';

export const USERS_DDL = `CREATE TABLE users (
  id bigint PRIMARY KEY,
  email text,
  phone text,
  first_name text,
  last_name text,
  bio text,
  status text DEFAULT 'active',
  plan text,
  updated_at timestamptz DEFAULT now()
)`;

/** A config for the test database: unique slot and publication, the connector's own schema. */
export function testConfig(tdb: TestDatabase, overrides: { mappings?: unknown[]; [k: string]: unknown } = {}): Config {
  const { mappings, postgres, ...rest } = overrides;
  return parseConfig(
    {
      // Merged: a test names only what it changes (postgres.stateUrl, autoCreate, …).
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc', ...(postgres as object | undefined) },
      wooxy: { accessToken: 'test-token', baseUrl: 'http://127.0.0.1:9/v3' },
      capture: { flushIntervalMs: 20 },
      // Tests of the stream alone: a snapshot writing the same rows would satisfy their waits before the stream does.
      snapshot: { onStart: false },
      http: { port: 0 },
      log: { level: process.env.TEST_LOG_LEVEL ?? 'silent' },
      mappings: mappings ?? [
        {
          table: 'public.users',
          contactListId: 'list-1',
          key: 'id',
          fields: { userId: 'id', email: 'email', phoneNumber: 'phone', firstName: 'first_name', lastName: 'last_name', name: 'bio' },
        },
      ],
      ...rest,
    },
    {},
  );
}

export function testConnector(config: Config, extra: Partial<ConnectorOptions> = {}): Connector {
  const log = createLogger({ level: config.log.level, pretty: false });
  return new Connector({ config, log, ...extra });
}
