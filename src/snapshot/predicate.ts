import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { CdcError, PgCodes } from '../errors.js';
import type { SourceTable } from './types.js';

/**
 * The checks a resync's `--where` passes before any row is read. The predicate is operator SQL run with the
 * connector's role; READ ONLY transactions stop writes to tables, but not functions with effects outside
 * them: `lo_import('/etc/passwd')` (fails only later, on the large object), `pg_create_logical_replication_slot`
 * (a slot left behind retains WAL), `pg_terminate_backend` (the connector's own walsender), `pg_sleep`,
 * `set_config`, `dblink`. Postgres marks every such function VOLATILE, so the rule is: only IMMUTABLE and
 * STABLE functions, resolved by the parser, are allowed.
 */

/** The predicate on its own lines: a trailing `--` comment cannot swallow what follows. */
export function wrapPredicate(where: string): string {
  return `(\n${where}\n)`;
}

const usage = (message: string, cause?: unknown) => new CdcError('USAGE_INVALID', message, { cause });

/**
 * Fails with USAGE_INVALID unless `where` is one boolean expression over the table that calls no volatile
 * function. Reads nothing and changes nothing: names and types are resolved by EXPLAIN and by parsing the
 * predicate into a temporary view, which is rolled back; the predicate itself is never evaluated.
 */
export async function checkPredicate(db: Kysely<Database>, table: SourceTable, where: string): Promise<void> {
  // The bound parameter is the point: pg sends a query without parameters by the simple protocol, which runs
  // `true); SELECT pg_terminate_backend(…); SELECT (true` as three statements. With one, it is a single
  // prepared statement or a syntax error. Every later statement repeats this text, so holds the same.
  // Parse errors (names, types, syntax) come back as Postgres errors; the caller reports them with their text.
  await db.transaction().setAccessMode('read only').execute(async (trx) => {
    await sql`EXPLAIN SELECT ${1}::int FROM ${sql.raw(table.qualified)} WHERE ${sql.raw(wrapPredicate(where))}`.execute(trx);
  });
  await checkSingleExpression(db, table, where);
  await checkVolatility(db, table, where);
}

/**
 * `id > 1990) OR (true` parses once wrapped in parentheses — as `(id > 1990) OR (true)`, every row, and
 * in the chunk query it would also detach the keyset condition. An expression whose parentheses balance on
 * their own parses without the wrapping too; one that closes the wrapper's does not.
 */
async function checkSingleExpression(db: Kysely<Database>, table: SourceTable, where: string): Promise<void> {
  try {
    await db.transaction().setAccessMode('read only').execute(async (trx) => {
      await sql`EXPLAIN SELECT ${1}::int FROM ${sql.raw(table.qualified)} WHERE ${sql.raw(`\n${where}\n`)}`.execute(trx);
    });
  } catch (e) {
    throw usage('not one expression: it closes a parenthesis it did not open, so it would reach outside its own', e);
  }
}

/**
 * In a stored rule every call is a node with the callee's oid: FUNCEXPR :funcid, OPEXPR and its kin
 * :opfuncid (and :opno), aggregates :aggfnoid, window functions :winfnoid, row comparisons :opnos, sort and
 * group clauses of subqueries :eqop and :sortop. Constants are stored as bytes and names escaped, so no text
 * of the predicate can forge one.
 */
const FUNCTION_REFS = /:(?:funcid|opfuncid|aggfnoid|winfnoid|hashfuncid|negfuncid|tsmhandler) (\d+)/g;
const OPERATOR_REFS = /:(?:opno|eqop|sortop) (\d+)/g;
const OPERATOR_LISTS = /:opnos \(o((?: \d+)*)\)/g;

/** Oids of the functions and operators a parsed rule (pg_rewrite.ev_action as text) calls. */
export function referencedOids(tree: string): { functions: string[]; operators: string[] } {
  const functions = new Set([...tree.matchAll(FUNCTION_REFS)].map((m) => m[1]!));
  const operators = new Set([...tree.matchAll(OPERATOR_REFS)].map((m) => m[1]!));
  for (const m of tree.matchAll(OPERATOR_LISTS)) for (const oid of m[1]!.trim().split(/\s+/)) if (oid) operators.add(oid);
  functions.delete('0');
  operators.delete('0');
  return { functions: [...functions], operators: [...operators] };
}

/**
 * Parses the predicate into a temporary view (never run; the transaction is rolled back), reads which
 * functions the parser resolved, operators through their implementing function, and refuses any that is
 * VOLATILE. Functions those functions call in turn are not inspected: a function declared STABLE is trusted.
 */
async function checkVolatility(db: Kysely<Database>, table: SourceTable, where: string): Promise<void> {
  const volatile = await db.connection().execute(async (conn) => {
    await sql`BEGIN`.execute(conn);
    try {
      await sql`SET LOCAL lock_timeout = '5s'`.execute(conn);
      await sql`SET LOCAL statement_timeout = '10s'`.execute(conn);
      await sql`CREATE TEMP VIEW wooxy_cdc_where_check AS SELECT 1 FROM ${sql.raw(table.qualified)} WHERE ${sql.raw(wrapPredicate(where))}`
        .execute(conn)
        .catch((e: unknown) => {
          if ((e as { code?: string }).code !== PgCodes.INSUFFICIENT_PRIVILEGE || !/temporary/i.test((e as Error).message)) throw e;
          throw new CdcError('PG_PREREQUISITE', `checking --where needs the TEMP privilege on the database (GRANT TEMP ON DATABASE … TO the connector's role): ${(e as Error).message}`, { cause: e });
        });
      const { rows } = await sql<{ tree: string }>`
        SELECT ev_action::text AS tree FROM pg_rewrite WHERE ev_class = 'pg_temp.wooxy_cdc_where_check'::regclass`.execute(conn);
      const { functions, operators } = referencedOids(rows[0]?.tree ?? '');
      const found = await sql<{ name: string }>`
        WITH called AS (
          SELECT unnest(${functions}::oid[]) AS fn
          UNION SELECT oprcode::oid FROM pg_operator WHERE oid = ANY (${operators}::oid[]))
        SELECT p.oid::regprocedure::text AS name FROM called JOIN pg_proc p ON p.oid = called.fn
        WHERE p.provolatile = 'v' ORDER BY 1`.execute(conn);
      return found.rows.map((r) => r.name);
    } finally {
      await sql`ROLLBACK`.execute(conn);
    }
  });
  if (volatile.length > 0) {
    throw usage(
      `calls ${volatile.join(', ')}, declared VOLATILE (it may change something or differ on every call); ` +
        'a resync predicate may only call IMMUTABLE or STABLE functions and operators',
    );
  }
}
