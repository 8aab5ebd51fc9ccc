import type { Queryable } from './type-descriptions.js';

/**
 * Publication column lists (PostgreSQL 15+): a mapped table is published with only the columns its mappings
 * read and its replica identity, so unmapped columns — the PII a mapping never uses — never leave the server.
 *
 * Postgres' rules shape the plan: a list must cover the replica identity while UPDATE and DELETE are published
 * (or the table's own UPDATEs and DELETEs fail), so REPLICA IDENTITY FULL, whose identity is every column,
 * takes no list; a table published through FOR ALL TABLES or FOR TABLES IN SCHEMA takes none either; and a
 * list cannot be edited in place before PostgreSQL 18, so changing one is a DROP TABLE and an ADD TABLE in one
 * transaction, which keeps a row filter a DBA set.
 */

export type PublishColumns = 'mapped' | 'all';

/** What a table's publication should carry: a column list, or every column and why. */
export type WantedColumns = { list: string[] } | { list: null; why: string | null };

export interface TableFacts {
  /** Schema-qualified and quoted, as SQL names it. */
  qualified: string;
  /** The columns of the replica identity, or 'full'. */
  identity: string[] | 'full';
}

const qi = (s: string) => `"${s.replace(/"/g, '""')}"`;

export function wantedColumns(columns: readonly string[], table: TableFacts, serverVersion: number, publish: PublishColumns): WantedColumns {
  if (publish === 'all') return { list: null, why: null };
  if (serverVersion < 150000) return { list: null, why: 'PostgreSQL before 15 has no publication column lists' };
  if (table.identity === 'full') return { list: null, why: 'its REPLICA IDENTITY FULL makes every column part of the identity, which a column list must cover' };
  return { list: [...new Set([...columns, ...table.identity])].sort() };
}

/** How a table is in the publication now: absent, through ALL TABLES or a schema, without a list, or with one. */
export type Published = { kind: 'absent' } | { kind: 'implicit' } | { kind: 'table'; list: string[] | null; rowFilter: string | null };

export async function readPublished(db: Queryable, publication: string, serverVersion: number): Promise<{ allTables: boolean; tables: Map<string, Published> }> {
  const pub = await db.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [publication]);
  const tables = new Map<string, Published>();
  const published = await db.query<{ schemaname: string; tablename: string }>('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [publication]);
  for (const t of published.rows) tables.set(`${qi(t.schemaname)}.${qi(t.tablename)}`, { kind: 'implicit' });
  const explicit = await db.query<{ schema: string; table: string; list: string[] | null; row_filter: string | null }>(
    serverVersion >= 150000
      ? `SELECT n.nspname AS schema, c.relname AS table,
           CASE WHEN r.prattrs IS NOT NULL THEN
             (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a WHERE a.attrelid = r.prrelid AND a.attnum = ANY(r.prattrs)) END AS list,
           pg_get_expr(r.prqual, r.prrelid) AS row_filter
         FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
         JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1`
      : `SELECT n.nspname AS schema, c.relname AS table, NULL::text[] AS list, NULL::text AS row_filter
         FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
         JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1`,
    [publication],
  );
  for (const t of explicit.rows) tables.set(`${qi(t.schema)}.${qi(t.table)}`, { kind: 'table', list: t.list, rowFilter: t.row_filter });
  return { allTables: pub.rows[0]?.puballtables ?? false, tables };
}

/** `"public"."users" ("email", "id")`: a table as CREATE or ALTER PUBLICATION names it with its list. */
export function tableSpec(qualified: string, list: readonly string[] | null, rowFilter: string | null = null): string {
  return `${qualified}${list ? ` (${list.map(qi).join(', ')})` : ''}${rowFilter ? ` WHERE (${rowFilter})` : ''}`;
}

export type TablePlan =
  | { action: 'none' }
  /** Published through ALL TABLES or a schema: no list is possible; say that every column travels. */
  | { action: 'implicit' }
  | { action: 'add'; sql: string }
  | { action: 'replace'; sql: string[]; missing: string[] };

/**
 * What to do about one table. A list that differs from the wanted one is replaced, whether it lacks a column
 * the mappings need (`missing`: the stream could not work) or has more (unmapped columns would travel); a list
 * where none is wanted is replaced too (REPLICA IDENTITY FULL with a list makes Postgres refuse the table's
 * updates). `needed` is what the mappings read plus the identity, whatever is wanted.
 */
export function planTable(publication: string, qualified: string, wanted: WantedColumns, needed: readonly string[], published: Published): TablePlan {
  const pub = qi(publication);
  if (published.kind === 'absent') return { action: 'add', sql: `ALTER PUBLICATION ${pub} ADD TABLE ${tableSpec(qualified, wanted.list)}` };
  if (published.kind === 'implicit') return { action: 'implicit' };
  const have = published.list;
  const same = have === null ? wanted.list === null : wanted.list !== null && have.length === wanted.list.length && have.every((c) => wanted.list.includes(c));
  if (same) return { action: 'none' };
  return {
    action: 'replace',
    missing: have === null ? [] : needed.filter((c) => !have.includes(c)),
    sql: ['BEGIN', `ALTER PUBLICATION ${pub} DROP TABLE ${qualified}`, `ALTER PUBLICATION ${pub} ADD TABLE ${tableSpec(qualified, wanted.list, published.rowFilter)}`, 'COMMIT'],
  };
}
