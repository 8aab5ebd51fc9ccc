import { sql, type Kysely, type Migration } from 'kysely';

/**
 * mappings.columns: each mapped column's attnum and type oid when the mapping last ran. A column dropped and
 * added again (same name, new attnum: every value changed, no row change streamed) or retyped while the
 * connector was stopped is told by it at start, and the mapping reconciled.
 */
export function mappingColumns(schema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(schema, 'mappings')} ADD COLUMN columns jsonb`.execute(db);
    },
  };
}
