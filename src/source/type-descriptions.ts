import type { PgType } from '../mapping/column-types.js';

/** The one method this needs from a pg Client, Pool or PoolClient. */
export interface Queryable {
  query<R extends object>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

interface TypeRow {
  oid: number;
  typname: string;
  name: string;
  category: string;
  typtype: string;
  typbasetype: number;
}

/**
 * Describes the types with these oids (e.g. a Relation message's typeOids, or pg_attribute.atttypid) for the
 * checks in mapping/column-types.ts: name, printed name without typmod, category, and for a domain its base
 * type, resolved through domains over domains. Oids the catalog does not know are absent from the result.
 */
export async function readTypeDescriptions(db: Queryable, oids: readonly number[]): Promise<Map<number, PgType>> {
  const { rows } = await db.query<TypeRow>(
    `WITH RECURSIVE t AS (
       SELECT oid, typname, typcategory, typtype, typbasetype FROM pg_type WHERE oid = ANY($1::oid[])
       UNION
       SELECT b.oid, b.typname, b.typcategory, b.typtype, b.typbasetype FROM pg_type b JOIN t ON b.oid = t.typbasetype AND t.typtype = 'd'
     )
     SELECT oid, typname, format_type(oid, NULL) AS name, typcategory AS category, typtype, typbasetype FROM t`,
    [[...new Set(oids)]],
  );
  const byOid = new Map(rows.map((r) => [Number(r.oid), r]));
  const describe = (oid: number): PgType | null => {
    const r = byOid.get(oid);
    if (!r) return null;
    let base: PgType | null = null;
    if (r.typtype === 'd') {
      base = describe(Number(r.typbasetype));
      if (base?.base) base = base.base;
    }
    return { oid, typname: r.typname, name: r.name, category: r.category, base };
  };
  const out = new Map<number, PgType>();
  for (const oid of oids) {
    const t = describe(oid);
    if (t) out.set(oid, t);
  }
  return out;
}
