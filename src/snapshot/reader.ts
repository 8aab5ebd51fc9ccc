import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';
import { CdcError } from '../errors.js';
import type { Mapper, Row } from '../mapping/mapper.js';
import { normalizeLsn } from '../source/lsn.js';
import '../source/pg-types.js';
import { checkPredicate, wrapPredicate } from './predicate.js';
import type { SnapshotChunk, SourceTable } from './types.js';

const qi = (s: string) => `"${s.replace(/"/g, '""')}"`;
const CURSOR = '__wooxy_cdc_cursor';

export interface TableInfo extends SourceTable {
  /** Whether an index leads with the key column: without one every chunk scans the table. */
  keyIndexed: boolean;
}

/** The key column's type and whether it is indexed, from the catalog. */
export async function describeTable(db: Kysely<Database>, mapper: Mapper): Promise<TableInfo> {
  const qualified = `${qi(mapper.schema)}.${qi(mapper.table)}`;
  const { rows } = await sql<{ type: string; indexed: boolean }>`
    SELECT format_type(a.atttypid, a.atttypmod) AS type,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indkey[0] = a.attnum AND i.indpred IS NULL) AS indexed
    FROM pg_attribute a WHERE a.attrelid = to_regclass(${qualified}) AND a.attname = ${mapper.key} AND NOT a.attisdropped`.execute(db);
  const r = rows[0];
  if (!r) throw new Error(`mapping ${mapper.name}: ${qualified} has no column ${mapper.key}`);
  return { qualified, key: qi(mapper.key), keyType: r.type, keyIndexed: r.indexed };
}

/**
 * How many rows a snapshot (or a resync's predicate) will read: exact for tables the statistics say are
 * small, the planner's estimate for large ones (a count of a large table costs a scan), null when unknown.
 */
export async function estimateRows(db: Kysely<Database>, table: SourceTable, where?: string): Promise<number | null> {
  const stats = await sql<{ n: number | null }>`
    SELECT CASE WHEN reltuples >= 0 THEN reltuples::float8 END AS n FROM pg_class WHERE oid = to_regclass(${table.qualified})`.execute(db);
  const estimate = stats.rows[0]?.n ?? null;
  if (where === undefined && estimate !== null && estimate >= 1_000_000) return Math.round(estimate);
  try {
    return await db.transaction().setAccessMode('read only').execute(async (trx) => {
      await sql`SET LOCAL statement_timeout = '5s'`.execute(trx);
      const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM ${sql.raw(table.qualified)} ${filter(where)}`.execute(trx);
      return Number(rows[0]?.n ?? 0);
    });
  } catch {
    return estimate === null ? null : Math.round(estimate);
  }
}

/** The operator's predicate, checked by checkPredicate before it is first used here. */
function filter(where: string | undefined, joiner: 'WHERE' | 'AND' = 'WHERE') {
  return where === undefined ? sql`` : sql.raw(`${joiner} ${wrapPredicate(where)}`);
}

/**
 * Reads a mapping's rows in key order, one chunk per REPEATABLE READ, READ ONLY transaction (keyset
 * pagination: `key > cursor ORDER BY key LIMIT n`, compared as the key column's own type, so bigint, text
 * and uuid keys all page correctly). Each chunk carries the watermark LSN and the MVCC snapshot of the
 * transaction that read it.
 */
export class ChunkReader {
  private readonly columns;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly mapper: Mapper,
    private readonly table: SourceTable,
    /** A resync's predicate (trusted operator SQL; see src/cli/resync.ts). */
    private readonly where?: string,
  ) {
    this.columns = sql.join(mapper.columns.map((c) => sql.id(c)));
  }

  /** Checks the predicate without reading or changing anything (src/snapshot/predicate.ts). */
  async validate(): Promise<void> {
    if (this.where !== undefined) await checkPredicate(this.db, this.table, this.where);
  }

  /**
   * Runs `fn` in a REPEATABLE READ, READ ONLY transaction, with the watermark and snapshot of its read: the
   * first statement fixes the transaction's snapshot, so the insert LSN read within it comes after.
   */
  private atRead<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T & { watermark: string; snapshot: string }> {
    return this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(async (trx) => {
        const w = await sql<{ lsn: string; snap: string }>`SELECT pg_current_wal_insert_lsn()::text AS lsn, pg_current_snapshot()::text AS snap`.execute(trx);
        return { ...(await fn(trx)), watermark: normalizeLsn(w.rows[0]!.lsn), snapshot: w.rows[0]!.snap };
      });
  }

  async read(after: string | null, limit: number): Promise<SnapshotChunk> {
    const { table } = this;
    return this.atRead(async (trx) => {
      const cursor = after === null ? sql`` : sql`AND ${sql.raw(table.key)} > ${after}::${sql.raw(table.keyType)}`;
      const { rows } = await sql<Row & { [CURSOR]: string }>`
        SELECT ${this.columns}, ${sql.raw(table.key)}::text AS ${sql.raw(CURSOR)} FROM ${sql.raw(table.qualified)}
        WHERE true ${filter(this.where, 'AND')} ${cursor}
        ORDER BY ${sql.raw(table.key)} LIMIT ${limit}`.execute(trx);
      const lastKey = rows.at(-1)?.[CURSOR] ?? null;
      const mapped = rows.map((r) => {
        const row: Row = {};
        for (const c of this.mapper.columns) row[c] = r[c];
        return row;
      });
      return { mapping: this.mapper.name, rows: mapped, lastKey };
    });
  }

  /**
   * Which of these contact keys no row of the table has any more, read like a chunk (REPEATABLE READ, READ
   * ONLY, with its watermark and snapshot), so the sweep can tell a row deleted before the read from one
   * inserted again after it.
   */
  async absent(keys: readonly string[]): Promise<SweepChunk> {
    const { table } = this;
    return this.atRead(async (trx) => {
      const { rows } = await sql<{ k: string }>`
        SELECT x.k FROM unnest(${[...keys]}::text[]) AS x(k)
        WHERE NOT EXISTS (SELECT 1 FROM ${sql.raw(table.qualified)} t WHERE t.${sql.raw(table.key)} = x.k::${sql.raw(table.keyType)})`.execute(trx);
      return { mapping: this.mapper.name, keys: rows.map((r) => r.k) };
    });
  }
}

/**
 * Which of these contact keys a row of the table has now (READ COMMITTED: the latest committed rows). The
 * snapshot writer asks for the keys it has no state for, after taking the writers' turn (applyChunk).
 */
export async function presentKeys(db: Kysely<Database>, table: SourceTable, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const { rows } = await sql<{ k: string }>`
    SELECT x.k FROM unnest(${[...keys]}::text[]) AS x(k)
    WHERE EXISTS (SELECT 1 FROM ${sql.raw(table.qualified)} t WHERE t.${sql.raw(table.key)} = x.k::${sql.raw(table.keyType)})`.execute(db);
  return rows.map((r) => r.k);
}

/**
 * One row of a mapping's table by its key, as a chunk reads it (the mapped columns, decoded as the stream
 * decodes them), in a READ ONLY transaction; null when no row has that key. The key is compared as the key
 * column's own type: text that is not a value of it is a USAGE_INVALID error naming the type.
 */
export async function readRowByKey(db: Kysely<Database>, mapper: Mapper, table: SourceTable, key: string): Promise<Row | null> {
  const columns = sql.join(mapper.columns.map((c) => sql.id(c)));
  try {
    return await db
      .transaction()
      .setAccessMode('read only')
      .execute(async (trx) => {
        const { rows } = await sql<Row>`SELECT ${columns} FROM ${sql.raw(table.qualified)} WHERE ${sql.raw(table.key)} = ${key}::${sql.raw(table.keyType)}`.execute(trx);
        const r = rows[0];
        if (!r) return null;
        const row: Row = {};
        for (const c of mapper.columns) row[c] = r[c];
        return row;
      });
  } catch (e) {
    if (/^22/.test((e as { code?: string }).code ?? '')) {
      throw new CdcError('USAGE_INVALID', `--key ${JSON.stringify(key)} is not a value of ${table.qualified}.${table.key} (${table.keyType}): ${(e as Error).message}`, { cause: e });
    }
    throw e;
  }
}

/** Contact keys whose rows a sweep read found gone, with the read's watermark and snapshot (see SnapshotChunk). */
export interface SweepChunk {
  mapping: string;
  keys: string[];
  watermark: string;
  snapshot: string;
}
