import type { Row } from '../mapping/mapper.js';
import type { Lsn } from './lsn.js';

/**
 * The seam between the replication stream and the outbox: one row change of a mapped table, with the commit
 * LSN of the transaction that holds it and that transaction's top-level xid (which a snapshot chunk checks
 * against its MVCC snapshot: see src/snapshot/runner.ts). `row` holds the mapped columns of the new row; an
 * `undefined` value is an unchanged TOASTed column the stream did not resend. A delete, under the default
 * replica identity, carries only the key.
 */
export type RowChange =
  | { kind: 'insert' | 'update'; mapping: string; key: string; row: Row; lsn: Lsn; xid?: number }
  | { kind: 'delete'; mapping: string; key: string; lsn: Lsn; xid?: number }
  | { kind: 'truncate'; mapping: string; lsn: Lsn; xid?: number };

/** Where the stream puts changes. Writes are durable when the promise resolves. */
export interface ChangeSink {
  /** The last LSN made durable by an earlier run ('0/0' when none): replayed transactions below it are skipped. */
  durableLsn(): Promise<Lsn>;
  /** Makes `changes` durable; with `durableLsn`, records that everything up to it is now durable. */
  write(changes: readonly RowChange[], durableLsn: Lsn | null): Promise<unknown>;
}
