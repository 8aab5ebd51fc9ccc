/**
 * Every error the connector raises on purpose carries a stable `code`, so logs, metrics and tests match on
 * codes rather than on prose. Causes are kept with `{ cause }` (graphile-worker's habit).
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  CONFIG_ENV_MISSING: 'CONFIG_ENV_MISSING',
  SCHEMA_TOO_NEW: 'SCHEMA_TOO_NEW',
  PG_PREREQUISITE: 'PG_PREREQUISITE',
  PG_SLOT_MISSING: 'PG_SLOT_MISSING',
  PG_PUBLICATION_MISSING: 'PG_PUBLICATION_MISSING',
  /** The publication's column list of a mapped table is not what the mappings need, and autoCreate is off. */
  PG_PUBLICATION_COLUMNS: 'PG_PUBLICATION_COLUMNS',
  MAPPING_SCHEMA_CHANGED: 'MAPPING_SCHEMA_CHANGED',
  ROW_INVALID: 'ROW_INVALID',
  /**
   * A dead letter: another contact of the mapping holds (at Wooxy) and still wants an identifier this one
   * wants; two source rows share an email, a phone number or a userId.
   */
  IDENTIFIER_TAKEN: 'IDENTIFIER_TAKEN',
  WOOXY_VALIDATION: 'WOOXY_VALIDATION',
  WOOXY_UNAUTHORIZED: 'WOOXY_UNAUTHORIZED',
  WOOXY_RATE_LIMITED: 'WOOXY_RATE_LIMITED',
  WOOXY_SERVER_ERROR: 'WOOXY_SERVER_ERROR',
  WOOXY_TIMEOUT: 'WOOXY_TIMEOUT',
  WOOXY_NETWORK: 'WOOXY_NETWORK',
  WOOXY_LIMIT_EXCEEDED: 'WOOXY_LIMIT_EXCEEDED',
  WOOXY_BAD_RESPONSE: 'WOOXY_BAD_RESPONSE',
  /** "List with id … not found!": a configuration problem for the whole list, not a bad row. */
  WOOXY_LIST_NOT_FOUND: 'WOOXY_LIST_NOT_FOUND',
  /**
   * A rejection about the list's own setup, not about a contact ("Variable … not found in list"): every
   * contact sent with the mapping meets it, so delivery pauses instead of dead-lettering them one by one.
   */
  WOOXY_LIST_REJECTED: 'WOOXY_LIST_REJECTED',
  /** A bad command-line argument (an unknown mapping, an invalid --where): exit 2, like a bad config. */
  USAGE_INVALID: 'USAGE_INVALID',
  /** A snapshot of the mapping is running in another process (it holds the mapping's advisory lock). */
  SNAPSHOT_BUSY: 'SNAPSHOT_BUSY',
  /** A string or number that is not a log sequence number (`16/B374D848`, unsigned 64 bits). */
  LSN_INVALID: 'LSN_INVALID',
  /** A snapshot or resync stopped by a signal before its last chunk. */
  SNAPSHOT_INTERRUPTED: 'SNAPSHOT_INTERRUPTED',
  /** The slot the connector streamed from is gone (or moved past what it made durable): changes were never seen. */
  PG_SLOT_LOST: 'PG_SLOT_LOST',
  /** The slot was invalidated (max_slot_wal_keep_size): it can no longer be read. */
  PG_SLOT_INVALIDATED: 'PG_SLOT_INVALIDATED',
  /** A newer leader epoch exists: this instance's pipeline was deposed and its writes fail closed. */
  LEADER_FENCED: 'LEADER_FENCED',
  /** The connector's sessions cannot commit durably (synchronous_commit stays off). */
  PG_DURABILITY: 'PG_DURABILITY',
  /** Wooxy answered with an error no reference page documents: treated as transient, never as a data rejection. */
  WOOXY_UNDOCUMENTED: 'WOOXY_UNDOCUMENTED',
  /** The mass-removal guard holds a mapping's removals until an operator approves or discards them. */
  REMOVALS_HELD: 'REMOVALS_HELD',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class CdcError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CdcError';
    this.code = code;
  }
}

export function isCdcError(e: unknown, code?: ErrorCode): e is CdcError {
  return e instanceof CdcError && (code === undefined || e.code === code);
}

/** Postgres SQLSTATEs the connector reacts to, by name. */
export const PgCodes = {
  DUPLICATE_OBJECT: '42710',
  UNDEFINED_OBJECT: '42704',
  OBJECT_IN_USE: '55006',
  INSUFFICIENT_PRIVILEGE: '42501',
  ADMIN_SHUTDOWN: '57P01',
  UNDEFINED_TABLE: '42P01',
  DEADLOCK_DETECTED: '40P01',
  SERIALIZATION_FAILURE: '40001',
} as const;
