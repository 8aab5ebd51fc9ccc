import pg from 'pg';
import { ConfigError, type ConfigProblem } from '../config/loader.js';
import { CdcError, PgCodes } from '../errors.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import { canRead, describeType } from '../mapping/column-types.js';
import { planTable, readPublished, tableSpec, wantedColumns, type PublishColumns, type TableFacts } from './column-lists.js';
import { normalizeLsn, type Lsn } from './lsn.js';
import { ensureSlot, type SlotOutcome } from './slot.js';
import { readTypeDescriptions } from './type-descriptions.js';

/** Column name → type OID of each mapped table when the connector started: the baseline for schema changes. */
export type ColumnTypes = Map<string, Map<string, number>>;

/** Why a mapping the connector has run before cannot run now (its table or a column is gone, a type unreadable). */
export interface MappingStop {
  code: 'MAPPING_TABLE_DROPPED' | 'MAPPING_SCHEMA_CHANGED';
  reason: string;
}

/**
 * Each mapped column's position and type in its table. A column dropped and added again keeps its name but
 * gets a new attnum, and every row's value changed without a row change the stream could see; a type change
 * (ALTER … TYPE … USING) may rewrite values the same way. Either one reconciles the mapping.
 */
export type ColumnIdentities = Record<string, { attnum: number; type: number }>;

/** What the stream starts from. */
export interface SourceBaseline {
  types: ColumnTypes;
  /** Each running mapping's table oid: a table dropped, or dropped and re-created, is told by it. */
  oids: Map<string, number>;
  /** Each running mapping's columns' attnums and types (see ColumnIdentities). */
  identities: Map<string, ColumnIdentities>;
  /** Mappings that cannot run now, and why: they are stopped; the others run. */
  stops: Map<string, MappingStop>;
  /** What was found of the slot (and the publication): a gap in what the stream saw must be reconciled. */
  slot: SlotOutcome;
  /**
   * The WAL position once the publication was set up. A change committed before it is decoded with the
   * publication as it was then, so a column a mapping has just started to read may be missing from it.
   */
  preparedAt: Lsn;
}

export interface SourceSetup {
  url: string;
  slot: string;
  publication: string;
  autoCreate: boolean;
  /** mapped (default): on PostgreSQL 15+, publish only the columns the mappings read; all: every column. */
  publishColumns?: PublishColumns;
  mappers: readonly Mapper[];
  log: Logger;
  /**
   * Mappings the connector has run before: one that cannot run now (its table or a column gone, a type it
   * cannot read) is stopped, not a configuration error, so the others go on and the gap is remembered.
   */
  known?: ReadonlyMap<string, KnownMapping>;
  /**
   * The last position durable in the outbox (null when this slot never streamed). A slot gone, invalidated, or
   * ahead of it means changes the stream never saw: the caller reconciles every mapping.
   */
  durableLsn?: string | null;
}

/**
 * What the connector ran a mapping with before. With the same definition (`same`), anything that keeps it from
 * running now happened to the source: it stops. With a changed one, only what the previous definition also
 * read (its table, its `columns`) counts as the source's doing — a column dropped while the mapping changed
 * stays a stop — and a table or column new in the definition that does not exist is the configuration's
 * mistake (exit 2).
 */
export interface KnownMapping {
  same: boolean;
  table: { schema: string; name: string } | null;
  columns: ReadonlySet<string>;
}

const qi = (s: string) => `"${s.replace(/"/g, '""')}"`;
export const qualified = (m: Pick<Mapper, 'schema' | 'table'>) => `${qi(m.schema)}.${qi(m.table)}`;

/**
 * Checks what logical replication needs — wal_level, the role's REPLICATION attribute, each mapped table and
 * column, SELECT on it, a replica identity that carries the key, no generated column the server will not
 * publish — and reports every missing thing in one error. Then verifies (or, with autoCreate, creates) the
 * publication, with its column lists, and the pgoutput slot.
 */
export async function prepareSource(opts: SourceSetup): Promise<SourceBaseline> {
  const client = new pg.Client({ connectionString: opts.url, application_name: 'wooxy-cdc-setup' });
  client.on('error', () => undefined); // a lost connection fails the query in progress; never the process
  await client.connect();
  try {
    const facts = await checkPrerequisites(client, opts.mappers, opts);
    const runnable = { ...opts, mappers: opts.mappers.filter((m) => !facts.stops.has(m.name)) };
    const publication = await ensurePublication(client, runnable, facts);
    const slot = await ensureSlot(client, {
      slot: opts.slot,
      autoCreate: opts.autoCreate,
      durableLsn: opts.durableLsn ?? null,
      // A publication made now is unknown to the slot's past: its older WAL cannot be decoded with it.
      publicationCreated: publication === 'created',
      log: opts.log,
    });
    // The insert position, not the write position: with asynchronous commit, a commit record inserted before the
    // publication changed may not be written yet, and it must still count as before.
    const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    return { types: facts.types, oids: facts.oids, identities: facts.identities, stops: facts.stops, slot, preparedAt: normalizeLsn(rows[0]!.lsn) };
  } finally {
    await client.end();
  }
}

export interface SourceFacts {
  types: ColumnTypes;
  oids: Map<string, number>;
  identities: Map<string, ColumnIdentities>;
  stops: Map<string, MappingStop>;
  serverVersion: number;
  /** Each mapped table (quoted, qualified) with its replica identity and the columns its mappings read. */
  tables: Map<string, TableFacts & { columns: string[] }>;
}

/**
 * A generated column reaches logical replication only from PostgreSQL 18, and then only when the publication
 * names it in a column list or sets publish_generated_columns = stored. Elsewhere the snapshot reads it and the
 * stream never carries it: the mapping would stop at the first change.
 */
export function generatedColumnPublished(serverVersion: number, listed: boolean, publishesGenerated: boolean): boolean {
  return serverVersion >= 180000 && (listed || publishesGenerated);
}

/**
 * Everything `run` needs from the database before it starts, checked in one pass; throws a ConfigError (exit 2)
 * for what the configuration names wrong — a missing table or column, a generated column — by config path, and
 * a CdcError for what the database lacks. Changes nothing: `validate-config --online` can call it as it is.
 */
export async function checkPrerequisites(
  client: pg.ClientBase,
  mappers: readonly Mapper[],
  opts: { publication: string; publishColumns?: PublishColumns; known?: ReadonlyMap<string, KnownMapping> },
): Promise<SourceFacts> {
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

  const serverVersion = Number((await client.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version_num'])).rows[0]?.v);
  // What the publication does with generated columns (PostgreSQL 18's pubgencols) and whether it lists tables.
  const pub = await client.query<{ implicit: boolean; generated: boolean }>(
    `SELECT puballtables${serverVersion >= 150000 ? ' OR EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid)' : ''} AS implicit,
            ${serverVersion >= 180000 ? "pubgencols = 's'" : 'false'} AS generated
     FROM pg_publication p WHERE pubname = $1`,
    [opts.publication],
  );
  const publication = pub.rows[0] ?? { implicit: false, generated: false };
  const generated: Array<{ m: Mapper; at: string; table: string; column: string; expression: string | null }> = [];
  const tables: SourceFacts['tables'] = new Map();
  const types: ColumnTypes = new Map();
  const oids = new Map<string, number>();
  const stops = new Map<string, MappingStop>();
  const identities = new Map<string, ColumnIdentities>();
  for (const m of mappers) {
    // A mapping that ran before and cannot run now stops (the others go on); a new one is a configuration error.
    const before = opts.known?.get(m.name);
    const known = before !== undefined && (before.same || (before.table?.schema === m.schema && before.table?.name === m.table));
    const mappingProblems: ConfigProblem[] = [];
    /** The columns the problems are about: a changed definition stops only for columns it read before. */
    const problemColumns = new Set<string>();
    const table = qualified(m);
    const { rows } = await client.query<{ oid: number | null; ident: string | null; can_select: boolean | null }>(
      `SELECT c.oid, c.relreplident AS ident, has_table_privilege(c.oid, 'SELECT') AS can_select
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [m.schema, m.table],
    );
    const t = rows[0];
    const at = `mappings[${mappers.indexOf(m)}]`;
    if (!t?.oid) {
      if (known) stops.set(m.name, { code: 'MAPPING_TABLE_DROPPED', reason: `table ${table} does not exist (dropped?)` });
      else configProblems.push({ path: `${at}.table`, message: `table ${table} does not exist` });
      continue;
    }
    oids.set(m.name, Number(t.oid));
    if (!t.can_select) problems.push(`mapping ${m.name}: no SELECT privilege on ${table}; run: GRANT SELECT ON ${table} TO ${qi(r?.rolname ?? 'current_user')}`);
    const cols = await client.query<{ attname: string; atttypid: number; attnum: number; attgenerated: string; generation: string | null }>(
      `SELECT a.attname, a.atttypid, a.attnum, a.attgenerated, pg_get_expr(d.adbin, d.adrelid) AS generation
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated <> ''
       WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`,
      [t.oid],
    );
    const byName = new Map(cols.rows.map((c) => [c.attname, Number(c.atttypid)]));
    const missing = m.columns.filter((c) => !byName.has(c));
    for (const c of missing) {
      problemColumns.add(c);
      for (const path of m.columnPaths.get(c) ?? ['']) mappingProblems.push({ path: `${at}.${path}`, message: `column ${c} does not exist in ${table}` });
    }
    // Each column's type against the way the mapping reads it (a jsonb column where text is wanted, say).
    const described = await readTypeDescriptions(client, [...byName.values()]);
    for (const c of m.columns) {
      const type = described.get(byName.get(c) ?? -1);
      if (!type) continue;
      for (const u of m.columnUses.get(c) ?? []) {
        const v = canRead(u.use, type);
        if (!v.ok) {
          problemColumns.add(c);
          mappingProblems.push({ path: `${at}.${u.path}`, message: `column ${c} of ${table} is ${describeType(type)}: ${u.path} ${v.reason}` });
        }
      }
    }
    if (mappingProblems.length > 0) {
      if (known && (before.same || [...problemColumns].every((c) => before.columns.has(c)))) stops.set(m.name, { code: 'MAPPING_SCHEMA_CHANGED', reason: mappingProblems.map((p) => `${p.path}: ${p.message}`).join('; ') });
      else configProblems.push(...mappingProblems);
      continue;
    }
    types.set(m.name, new Map(m.columns.filter((c) => byName.has(c)).map((c) => [c, byName.get(c)!])));
    const attnums = new Map(cols.rows.map((c) => [c.attname, Number(c.attnum)]));
    identities.set(m.name, Object.fromEntries(m.columns.filter((c) => byName.has(c)).map((c) => [c, { attnum: attnums.get(c)!, type: byName.get(c)! }])));
    generated.push(...cols.rows.filter((c) => c.attgenerated !== '' && m.columns.includes(c.attname)).map((c) => ({ m, at, table, column: c.attname, expression: c.generation })));

    let identity: string[] | 'full' = 'full';
    if (t.ident === 'n') {
      problems.push(`mapping ${m.name}: ${table} has REPLICA IDENTITY NOTHING, so deletes carry no key; run: ALTER TABLE ${table} REPLICA IDENTITY DEFAULT`);
    } else if (t.ident !== 'f') {
      const ident = await client.query<{ attname: string }>(
        `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = $1 AND ${t.ident === 'i' ? 'i.indisreplident' : 'i.indisprimary'}`,
        [t.oid],
      );
      const keyCols = ident.rows.map((x) => x.attname);
      identity = keyCols;
      if (keyCols.length === 0) {
        problems.push(`mapping ${m.name}: ${table} has no primary key, so deletes carry no key; add one or run: ALTER TABLE ${table} REPLICA IDENTITY FULL`);
      } else if (!keyCols.includes(m.key)) {
        problems.push(`mapping ${m.name}: key column ${m.key} is not in ${table}'s replica identity (${keyCols.join(', ')}); set key: to it, or ALTER TABLE ${table} REPLICA IDENTITY FULL`);
      }
    }
    // Several mappings of one table share its publication entry: it carries what any of them reads.
    const columns = [...new Set([...(tables.get(table)?.columns ?? []), ...m.columns.filter((c) => byName.has(c))])];
    tables.set(table, { qualified: table, identity, columns });
  }
  for (const g of generated) {
    const listed = wantedColumns(g.m.columns, tables.get(qualified(g.m)) ?? { qualified: g.table, identity: 'full' }, serverVersion, opts.publishColumns ?? 'mapped').list !== null;
    if (generatedColumnPublished(serverVersion, listed && !publication.implicit, publication.generated)) continue;
    for (const path of g.m.columnPaths.get(g.column) ?? ['']) {
      configProblems.push({
        path: `${g.at}.${path}`,
        message:
          `column ${g.column} of ${g.table} is generated (${g.expression ?? '?'}), and ${serverVersion >= 180000 ? 'this publication does not publish generated columns' : 'PostgreSQL before 18 does not publish generated columns'}: ` +
          `the snapshot would read it, the stream never. Use a template over the columns it is computed from (e.g. {template: "{first_name} {last_name}"})` +
          (serverVersion >= 180000 ? `, or run ALTER PUBLICATION ${qi(opts.publication)} SET (publish_generated_columns = stored)` : ', or on PostgreSQL 18 publish it with publish_generated_columns = stored'),
      });
    }
  }
  if (configProblems.length > 0) throw new ConfigError(configProblems);
  if (problems.length > 0) {
    throw new CdcError('PG_PREREQUISITE', `Postgres is not ready for wooxy-cdc:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return { types, oids, identities, stops, serverVersion, tables };
}

/** Verifies or fixes the publication; says whether it had to be created. */
async function ensurePublication(client: pg.Client, opts: SourceSetup, facts: SourceFacts): Promise<'created' | 'existed'> {
  const publish = opts.publishColumns ?? 'mapped';
  const wanted = new Map(
    [...facts.tables.values()].map((t) => {
      const needed = [...new Set([...t.columns, ...(t.identity === 'full' ? [] : t.identity)])];
      return [t.qualified, { wanted: wantedColumns(t.columns, t, facts.serverVersion, publish), needed }] as const;
    }),
  );
  for (const [table, w] of wanted) {
    if (w.wanted.list === null && w.wanted.why) opts.log.warn({ publication: opts.publication, table }, `${table} is published with every column, unmapped ones included: ${w.wanted.why}`);
  }
  const pub = await client.query<{ pubinsert: boolean; pubupdate: boolean; pubdelete: boolean; pubtruncate: boolean; puballtables: boolean }>(
    'SELECT pubinsert, pubupdate, pubdelete, pubtruncate, puballtables FROM pg_publication WHERE pubname = $1',
    [opts.publication],
  );
  const createSql = `CREATE PUBLICATION ${qi(opts.publication)} FOR TABLE ${[...wanted].map(([t, w]) => tableSpec(t, w.wanted.list)).join(', ')}`;
  if (pub.rows.length === 0) {
    if (!opts.autoCreate) {
      throw new CdcError('PG_PUBLICATION_MISSING', `Publication ${opts.publication} does not exist and postgres.autoCreate is false; run:\n  ${createSql};`);
    }
    try {
      await client.query(createSql);
      opts.log.info({ publication: opts.publication, tables: [...wanted].map(([t, w]) => tableSpec(t, w.wanted.list)) }, 'publication created');
    } catch (e) {
      if ((e as { code?: string }).code !== PgCodes.DUPLICATE_OBJECT) throw e;
      return 'existed';
    }
    return 'created';
  }
  const p = pub.rows[0]!;
  if (!p.pubinsert || !p.pubupdate || !p.pubdelete) {
    throw new CdcError('PG_PUBLICATION_MISSING', `Publication ${opts.publication} does not publish inserts, updates and deletes; run:\n  ALTER PUBLICATION ${qi(opts.publication)} SET (publish = 'insert, update, delete, truncate');`);
  }
  const published = await readPublished(client, opts.publication, facts.serverVersion);
  const adds: string[] = [];
  const replaces: Array<{ table: string; sql: string[]; missing: string[] }> = [];
  for (const [table, w] of wanted) {
    const plan = planTable(opts.publication, table, w.wanted, w.needed, published.tables.get(table) ?? { kind: 'absent' });
    if (plan.action === 'add') adds.push(table);
    else if (plan.action === 'replace') {
      // A list a DBA chose that covers what the mappings read stays, when every column is wanted only by choice.
      if (!opts.autoCreate && w.wanted.list === null && w.wanted.why === null && plan.missing.length === 0) continue;
      replaces.push({ table, sql: plan.sql, missing: plan.missing });
    } else if (plan.action === 'implicit' && w.wanted.list !== null) {
      opts.log.warn(
        { publication: opts.publication, table },
        `${table} is published through ${published.allTables ? 'FOR ALL TABLES' : 'FOR TABLES IN SCHEMA'}, which takes no column list: every column, unmapped ones included, leaves the server; a publication of the mapped tables would carry only ${w.wanted.list.join(', ')}`,
      );
    }
  }
  const addSql = adds.length > 0 ? `ALTER PUBLICATION ${qi(opts.publication)} ADD TABLE ${adds.map((t) => tableSpec(t, wanted.get(t)!.wanted.list)).join(', ')}` : null;
  if (!opts.autoCreate && (addSql || replaces.length > 0)) {
    const lacks = [
      ...adds,
      ...replaces.map((r) => (r.missing.length ? `columns ${r.missing.join(', ')} of ${r.table}` : `the column list the mappings need for ${r.table}`)),
    ];
    const sql = [...(addSql ? [addSql] : []), ...replaces.flatMap((r) => r.sql)];
    throw new CdcError(
      addSql ? 'PG_PUBLICATION_MISSING' : 'PG_PUBLICATION_COLUMNS',
      `Publication ${opts.publication} lacks ${lacks.join(', ')} and postgres.autoCreate is false; run:\n${sql.map((q) => `  ${q};`).join('\n')}`,
    );
  }
  if (addSql) {
    await client.query(addSql);
    opts.log.info({ publication: opts.publication, added: adds.map((t) => tableSpec(t, wanted.get(t)!.wanted.list)) }, 'tables added to the publication');
  }
  for (const r of replaces) {
    try {
      for (const q of r.sql) await client.query(q);
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      const sql = r.sql.map((q) => `${q};`).join(' ');
      if ((e as { code?: string }).code !== PgCodes.INSUFFICIENT_PRIVILEGE) throw e;
      // A least-privilege role does not own a publication a DBA made: one that already carries what the mappings
      // read still works, only wider than it should be.
      if (r.missing.length > 0) {
        throw new CdcError('PG_PUBLICATION_COLUMNS', `Publication ${opts.publication} lacks columns ${r.missing.join(', ')} of ${r.table}, and this role may not change it; run as its owner:\n  ${sql}`, { cause: e });
      }
      opts.log.warn({ publication: opts.publication, table: r.table }, `${r.table} is published with columns the mappings do not read, and this role may not change the publication; its owner can run: ${sql}`);
      continue;
    }
    opts.log.info({ publication: opts.publication, table: r.table, columns: wanted.get(r.table)!.wanted.list ?? 'all' }, 'publication column list set');
  }
  return 'existed';
}
