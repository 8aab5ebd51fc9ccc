import type { ColumnType, Generated } from 'kysely';

/** Row types of the connector's own tables (see migrations/). LSNs travel as text in `X/Y` form. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableJson = ColumnType<Record<string, unknown> | null, string | null, string | null>;

export interface ReplicationStateTable {
  slot: string;
  durable_lsn: ColumnType<string, string | undefined, string>;
  updated_at: Timestamp;
}

export interface ContactStateTable {
  mapping: string;
  source_key: string;
  row: NullableJson;
  desired: NullableJson;
  synced: NullableJson;
  lsn: ColumnType<string, string | undefined, string>;
  /** Top-level xid of the stream change that wrote the state; null when a snapshot chunk wrote it. */
  xid: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  updated_at: Timestamp;
}

export type OutboxState = 'pending' | 'inflight';

export interface OutboxTable {
  mapping: string;
  source_key: string;
  state: OutboxState;
  payload: NullableJson;
  lsn: ColumnType<string, string | undefined, string>;
  attempts: Generated<number>;
  next_attempt_at: Timestamp;
  request_id: string | null;
  batch_id: string | null;
  sent_op: string | null;
  sent_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  last_error: string | null;
  op_hint: 'add' | 'update' | 'replace' | null;
  maybe_ids: NullableJson;
  maybe_removed: ColumnType<boolean, boolean | undefined, boolean>;
  claim_epoch: ColumnType<string | null, string | number | null | undefined, string | number | null>;
  claimed_by: string | null;
  claimed_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  enqueued_at: Timestamp;
  updated_at: Timestamp;
}

export interface RequestsTable {
  request_id: string;
  mapping: string;
  list_id: string;
  op: string;
  batch_id: string;
  contact_count: number;
  status: ColumnType<'new' | 'done' | 'fail' | 'expired', 'new' | 'done' | 'fail' | 'expired' | undefined>;
  sent_at: Timestamp;
  checked_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  resolved_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  resolved_via: string | null;
  warned: ColumnType<boolean, boolean | undefined, boolean>;
  epoch: ColumnType<string | null, string | number | null | undefined, string | number | null>;
  stray: NullableJson;
}

export interface LeaderTable {
  slot: string;
  epoch: ColumnType<string, string | number, string | number>;
  holder: string;
  elected_at: Timestamp;
}

export interface DeadLettersTable {
  mapping: string;
  source_key: string;
  op: string;
  payload: NullableJson;
  error_code: string;
  human_error: string;
  attempts: Generated<number>;
  first_seen: Timestamp;
  last_seen: Timestamp;
  /** IDENTIFIER_TAKEN: the contact (same mapping) holding one of this contact's identifiers, and which one. */
  blocked_key: string | null;
  blocked_field: 'userId' | 'email' | 'phoneNumber' | null;
  blocked_value: string | null;
}

export interface SnapshotProgressTable {
  mapping: string;
  /** The last key written, as text (compared in SQL after a cast to the key column's own type). */
  cursor: string | null;
  rows_done: ColumnType<string, number | string | undefined, number | string>;
  rows_total: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  chunks_done: Generated<number>;
  watermark: string | null;
  started_at: Timestamp;
  updated_at: Timestamp;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  reconcile: ColumnType<boolean, boolean | undefined, boolean>;
  reason: string | null;
  phase: ColumnType<'rows' | 'sweep', 'rows' | 'sweep' | undefined, 'rows' | 'sweep'>;
  sweep_cursor: string | null;
  removed: ColumnType<string, number | string | undefined, number | string>;
}

export interface MappingsTable {
  name: string;
  fingerprint: string;
  definition: ColumnType<Record<string, unknown>, string, string>;
  list_id: string;
  table_oid: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  stopped_code: string | null;
  stopped_reason: string | null;
  stopped_lsn: string | null;
  stopped_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  updated_at: Timestamp;
  columns: ColumnType<Record<string, { attnum: number; type: number }> | null, string | null | undefined, string | null>;
}

export interface EventsTable {
  id: Generated<string>;
  at: Timestamp;
  level: string;
  code: string;
  mapping: string | null;
  message: string;
}

export interface RemovalGuardTable {
  mapping: string;
  held_since: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  held_count: Generated<number>;
  held_synced: ColumnType<string, number | string | undefined, number | string>;
  cause: string | null;
  /** Removals at or below this LSN were decided by an operator (approved or discarded). */
  approved_lsn: ColumnType<string, string | undefined, string>;
  synced_count: ColumnType<string | null, number | string | null | undefined, number | string | null>;
  counted_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  updated_at: Timestamp;
}

export interface RemovalDecisionsTable {
  id: Generated<string>;
  mapping: string;
  decision: 'approve' | 'discard';
  contacts: number;
  held_since: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  cause: string | null;
  decided_by: string;
  decided_at: Timestamp;
}

/** One contact's part in one request (or in a call Wooxy refused: request_id null); see migrations/0009_history.ts. */
export interface HistoryTable {
  mapping: string;
  source_key: string;
  request_id: string | null;
  op: string;
  sent_at: Timestamp;
  resolved_at: Timestamp;
  outcome: 'success' | 'retry' | 'dead' | 'expired' | 'stray';
  code: string | null;
  human_error: string | null;
  hint: string | null;
  ids: NullableJson;
}

export interface Database {
  replication_state: ReplicationStateTable;
  contact_state: ContactStateTable;
  outbox: OutboxTable;
  requests: RequestsTable;
  dead_letters: DeadLettersTable;
  snapshot_progress: SnapshotProgressTable;
  leader: LeaderTable;
  mappings: MappingsTable;
  events: EventsTable;
  removal_guard: RemovalGuardTable;
  removal_decisions: RemovalDecisionsTable;
  history: HistoryTable;
}
