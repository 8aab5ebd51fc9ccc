import type { Row } from '../mapping/mapper.js';
import type { Lsn } from '../source/lsn.js';

/**
 * The seam between a snapshot read and the outbox: rows of one mapping read in one REPEATABLE READ
 * transaction, in key order, with what that transaction saw of the world.
 */
export interface SnapshotChunk {
  mapping: string;
  /** The mapped columns of each row, decoded as the stream decodes them. */
  rows: Row[];
  /** pg_current_wal_insert_lsn(), taken in the reading transaction after its snapshot: the chunk's watermark. */
  watermark: Lsn;
  /** pg_current_snapshot() of the reading transaction, as text (xmin:xmax:xip,…). */
  snapshot: string;
  /** The last key read, as the key column's text form: the cursor after this chunk (null when empty). */
  lastKey: string | null;
}

/** The source table a chunk came from, as the writer needs it to check that a row still exists. */
export interface SourceTable {
  /** Schema-qualified, quoted. */
  qualified: string;
  /** Quoted key column. */
  key: string;
  /** The key column's type, from format_type(): keys travel as text and are cast back to it. */
  keyType: string;
}
