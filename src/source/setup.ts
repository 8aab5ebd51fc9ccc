import pg from 'pg';
import { ConfigError, type ConfigProblem } from '../config/loader.js';
import { CdcError, PgCodes } from '../errors.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';

/** Column name → type OID of each mapped table when the connector started: the baseline for schema changes. */
export type ColumnTypes = Map<string, Map<string, number>>;

export interface SourceSetup {
  url: string;
  slot: string;
  publication: string;
  autoCreate: boolean;
  mappers: readonly Mapper[];
  log: Logger;
}

const qi = (s: string) => `"${s.replace(/"/g, '""')}"`;
export const qualified = (m: Pick<Mapper, 'schema' | 'table'>) => `${qi(m.schema)}.${qi(m.table)}`;

/**
 * Checks what logical replication needs — wal_level, the role's REPLICATION attribute, each mapped table and
 * column, SELECT on it, a replica identity that carries the key — and reports every missing thing in one error.
 * Then verifies (or, with autoCreate, creates) the publication and the pgoutput slot.
 */
export async function prepareSource(opts: SourceSetup): Promise<ColumnTypes> {
  const client = new pg.Client({ connectionString: opts.url, application_name: 'wooxy-cdc-setup' });
  client.on('error', () => undefined); // a lost connection fails the query in progress; never the process
  await client.connect();
  try {
    const types = await checkPrerequisites(client, opts.mappers);
    await ensurePublication(client, opts);
    await ensureSlot(client, opts);
    return types;
  } finally {
    await client.end();
  }
}

async function checkPrerequisites(client: pg.Client, mappers: readonly Mapper[]): Promise<ColumnTypes> {
  const problems: string[] = [];
  // Tables and columns the configuration names but the database lacks are configuration errors (exit 2).
  const configProblems: ConfigProblem[] = [];
  const wal = await client.query<{ wal_level: string }>('SHOW wal_level');
  if (wal.rows[0]?.wal_level !== 'logical') {
    problems.push(`wal_level is ${wal.rows[0]?.wal_level}; set wal_level = logical in postgresql.conf and restart the server`);
  }
  const role = await client.query<{ rolname: string; rolreplication: boolean; rolsuper: boolean }>(
    'SELECT rolname, rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user',
  );
  const r = role.rows[0];
  if (r && !r.rolreplication && !r.rolsuper) problems.push(`role ${r.rolname} lacks REPLICATION; run: ALTER ROLE ${qi(r.rolname)} REPLICATION`);

  const types: ColumnTypes = new Map();
  for (const m of mappers) {
    const table = qualified(m);
    const { rows } = await client.query<{ oid: number | null; ident: string | null; can_select: boolean | null }>(
      `SELECT c.oid, c.relreplident AS ident, has_table_privilege(c.oid, 'SELECT') AS can_select
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [m.schema, m.table],
    );
    const t = rows[0];
    const at = `mappings[${mappers.indexOf(m)}]`;
    if (!t?.oid) {
      configProblems.push({ path: `${at}.table`, message: `table ${table} does not exist` });
      continue;
    }
    if (!t.can_select) problems.push(`mapping ${m.name}: no SELECT privilege on ${table}; run: GRANT SELECT ON ${table} TO ${qi(r?.rolname ?? 'current_user')}`);
    const cols = await client.query<{ attname: string; atttypid: number }>(
      'SELECT attname, atttypid FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped',
      [t.oid],
    );
    const byName = new Map(cols.rows.map((c) => [c.attname, Number(c.atttypid)]));
    const missing = m.columns.filter((c) => !byName.has(c));
    for (const c of missing) {
      for (const path of m.columnPaths.get(c) ?? ['']) configProblems.push({ path: `${at}.${path}`, message: `column ${c} does not exist in ${table}` });
    }
    types.set(m.name, new Map(m.columns.filter((c) => byName.has(c)).map((c) => [c, byName.get(c)!])));

    if (t.ident === 'n') {
      problems.push(`mapping ${m.name}: ${table} has REPLICA IDENTITY NOTHING, so deletes carry no key; run: ALTER TABLE ${table} REPLICA IDENTITY DEFAULT`);
    } else if (t.ident !== 'f') {
      const ident = await client.query<{ attname: string }>(
        `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = $1 AND ${t.ident === 'i' ? 'i.indisreplident' : 'i.indisprimary'}`,
        [t.oid],
      );
      const keyCols = ident.rows.map((x) => x.attname);
      if (keyCols.length === 0) {
        problems.push(`mapping ${m.name}: ${table} has no primary key, so deletes carry no key; add one or run: ALTER TABLE ${table} REPLICA IDENTITY FULL`);
      } else if (!keyCols.includes(m.key)) {
        problems.push(`mapping ${m.name}: key column ${m.key} is not in ${table}'s replica identity (${keyCols.join(', ')}); set key: to it, or ALTER TABLE ${table} REPLICA IDENTITY FULL`);
      }
    }
  }
  if (configProblems.length > 0) throw new ConfigError(configProblems);
  if (problems.length > 0) {
    throw new CdcError('PG_PREREQUISITE', `Postgres is not ready for wooxy-cdc:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return types;
}

async function ensurePublication(client: pg.Client, opts: SourceSetup): Promise<void> {
  const wanted = [...new Set(opts.mappers.map(qualified))];
  const pub = await client.query<{ pubinsert: boolean; pubupdate: boolean; pubdelete: boolean; pubtruncate: boolean; puballtables: boolean }>(
    'SELECT pubinsert, pubupdate, pubdelete, pubtruncate, puballtables FROM pg_publication WHERE pubname = $1',
    [opts.publication],
  );
  const createSql = `CREATE PUBLICATION ${qi(opts.publication)} FOR TABLE ${wanted.join(', ')}`;
  if (pub.rows.length === 0) {
    if (!opts.autoCreate) {
      throw new CdcError('PG_PUBLICATION_MISSING', `Publication ${opts.publication} does not exist and postgres.autoCreate is false; run:\n  ${createSql};`);
    }
    try {
      await client.query(createSql);
      opts.log.info({ publication: opts.publication, tables: wanted }, 'publication created');
    } catch (e) {
      if ((e as { code?: string }).code !== PgCodes.DUPLICATE_OBJECT) throw e;
    }
    return;
  }
  const p = pub.rows[0]!;
  if (!p.pubinsert || !p.pubupdate || !p.pubdelete) {
    throw new CdcError('PG_PUBLICATION_MISSING', `Publication ${opts.publication} does not publish inserts, updates and deletes; run:\n  ALTER PUBLICATION ${qi(opts.publication)} SET (publish = 'insert, update, delete, truncate');`);
  }
  if (p.puballtables) return;
  const { rows } = await client.query<{ schemaname: string; tablename: string }>(
    'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1',
    [opts.publication],
  );
  const have = new Set(rows.map((t) => qualified({ schema: t.schemaname, table: t.tablename })));
  const missing = wanted.filter((t) => !have.has(t));
  if (missing.length === 0) return;
  const addSql = `ALTER PUBLICATION ${qi(opts.publication)} ADD TABLE ${missing.join(', ')}`;
  if (!opts.autoCreate) {
    throw new CdcError('PG_PUBLICATION_MISSING', `Publication ${opts.publication} lacks ${missing.join(', ')} and postgres.autoCreate is false; run:\n  ${addSql};`);
  }
  await client.query(addSql);
  opts.log.info({ publication: opts.publication, added: missing }, 'tables added to the publication');
}

async function ensureSlot(client: pg.Client, opts: SourceSetup): Promise<void> {
  const { rows } = await client.query<{ plugin: string; database: string; current: string }>(
    'SELECT plugin, database, current_database() AS current FROM pg_replication_slots WHERE slot_name = $1',
    [opts.slot],
  );
  const createSql = `SELECT pg_create_logical_replication_slot('${opts.slot}', 'pgoutput')`;
  const slot = rows[0];
  if (!slot) {
    if (!opts.autoCreate) {
      throw new CdcError('PG_SLOT_MISSING', `Replication slot ${opts.slot} does not exist and postgres.autoCreate is false; run:\n  ${createSql};`);
    }
    try {
      await client.query('SELECT pg_create_logical_replication_slot($1, $2)', [opts.slot, 'pgoutput']);
      opts.log.info({ slot: opts.slot }, 'replication slot created');
    } catch (e) {
      if ((e as { code?: string }).code !== PgCodes.DUPLICATE_OBJECT) throw e;
    }
    return;
  }
  if (slot.plugin !== 'pgoutput' || slot.database !== slot.current) {
    throw new CdcError('PG_PREREQUISITE', `Replication slot ${opts.slot} uses plugin ${slot.plugin} on database ${slot.database}; wooxy-cdc needs a pgoutput slot on ${slot.current}. Choose another postgres.slot, or drop it.`);
  }
}
