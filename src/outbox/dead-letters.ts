import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';
import type { Row } from '../mapping/mapper.js';

export interface InvalidRow {
  mapping: string;
  key: string;
  op: string;
  payload: Row | null;
  message: string;
}

/**
 * Dead-letters rows the vendor's rules reject (ROW_INVALID), one statement for the lot. A contact changed
 * twice in one batch appears once, with its latest row: ON CONFLICT cannot touch a row twice in a statement,
 * and that error would fail the whole batch, again on every replay.
 */
export async function recordInvalidRows(trx: Transaction<Database>, schema: string, rows: readonly InvalidRow[]): Promise<void> {
  if (rows.length === 0) return;
  const dead = [...new Map(rows.map((d) => [`${d.mapping}\u0000${d.key}`, d])).values()];
  const t = sql.id(schema, 'dead_letters');
  await sql`
    INSERT INTO ${t} (mapping, source_key, op, payload, error_code, human_error)
    SELECT m, k, o, p, 'ROW_INVALID', h FROM unnest(${dead.map((d) => d.mapping)}::text[], ${dead.map((d) => d.key)}::text[], ${dead.map((d) => d.op)}::text[],
      ${dead.map((d) => (d.payload ? JSON.stringify(d.payload) : null))}::jsonb[], ${dead.map((d) => d.message)}::text[]) AS u(m, k, o, p, h)
    ON CONFLICT (mapping, source_key) DO UPDATE
      SET op = EXCLUDED.op, payload = EXCLUDED.payload, error_code = EXCLUDED.error_code, human_error = EXCLUDED.human_error,
          attempts = ${t}.attempts + 1, last_seen = now()`.execute(trx);
}
