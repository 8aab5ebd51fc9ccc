import { Migrator, sql, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import { MIGRATIONS } from '../../migrations/index.js';
import { CdcError, PgCodes } from '../errors.js';

const TABLE = 'schema_migrations';
const LOCK_TABLE = 'schema_migrations_lock';

class SchemaProvider implements MigrationProvider {
  constructor(private readonly schema: string) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return Object.fromEntries(MIGRATIONS.map(([name, factory]) => [name, factory(this.schema)]));
  }
}

function migrator<T>(db: Kysely<T>, schema: string): Migrator {
  return new Migrator({
    db,
    provider: new SchemaProvider(schema),
    migrationTableSchema: schema,
    migrationTableName: TABLE,
    migrationLockTableName: LOCK_TABLE,
  });
}

/** Names of the migrations applied to `schema`, oldest first; empty when the schema is new. */
export async function appliedMigrations<T>(db: Kysely<T>, schema: string): Promise<string[]> {
  const exists = await sql<{ ok: boolean }>`SELECT to_regclass(${`${schema}.${TABLE}`}) IS NOT NULL AS ok`.execute(db);
  if (!exists.rows[0]?.ok) return [];
  const { rows } = await sql<{ name: string }>`SELECT name FROM ${sql.id(schema, TABLE)} ORDER BY name`.execute(db);
  return rows.map((r) => r.name);
}

/**
 * Refuses a schema that a newer release migrated: this release does not know what those migrations changed,
 * so writing to it could corrupt state.
 */
export async function assertSchemaKnown<T>(db: Kysely<T>, schema: string): Promise<void> {
  const known = new Set(MIGRATIONS.map(([name]) => name));
  const unknown = (await appliedMigrations(db, schema)).filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new CdcError(
      'SCHEMA_TOO_NEW',
      `Schema "${schema}" has migrations this version does not know (${unknown.join(', ')}): it was migrated by a newer wooxy-cdc. Run that version, or restore the schema.`,
    );
  }
}

/**
 * Creates the schema only when it is missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even
 * when the schema exists, and a least-privilege role is given its schema by a DBA instead.
 */
async function ensureSchema<T>(db: Kysely<T>, schema: string): Promise<void> {
  const { rows } = await sql<{ ok: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ${schema}) AS ok`.execute(db);
  if (rows[0]?.ok) return;
  try {
    await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
  } catch (e) {
    if ((e as { code?: string }).code !== PgCodes.INSUFFICIENT_PRIVILEGE) throw e;
    throw new CdcError(
      'PG_PREREQUISITE',
      `cannot create the connector's schema "${schema}": the role lacks CREATE on the database; grant it, or have a DBA run: CREATE SCHEMA "${schema}" AUTHORIZATION <connector role>`,
      { cause: e },
    );
  }
}

export interface MigrateOutcome {
  applied: string[];
  current: string[];
}

/**
 * Applies pending migrations. Kysely runs them inside a transaction (Postgres has transactional DDL) and
 * holds a lock table row meanwhile, so two instances starting at once cannot both migrate.
 */
export async function migrate<T>(db: Kysely<T>, schema: string): Promise<MigrateOutcome> {
  await assertSchemaKnown(db, schema);
  await ensureSchema(db, schema);
  const result: MigrationResultSet = await migrator(db, schema).migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${(result.error as Error).message}`, { cause: result.error });
  }
  return {
    applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
    current: await appliedMigrations(db, schema),
  };
}
