import pg from 'pg';
import type { Config } from '../config/schema.js';
import { lockHolder, type LockHolder } from '../ha/leader.js';

/**
 * What `wooxy-cdc status` reports, read straight from Postgres (the connector need not run): the slot, the
 * leader, the outbox, unresolved requests, dead letters, held removals, snapshot progress and the latest error. Read-only;
 * tables that do not exist (an unmigrated schema, no snapshot yet) are reported as such, never created.
 */
export interface Status {
  slot: {
    name: string;
    exists: boolean;
    active: boolean;
    activePid: number | null;
    confirmedFlushLsn: string | null;
    restartLsn: string | null;
    /** WAL not yet confirmed: pg_current_wal_lsn() − confirmed_flush_lsn. */
    lagBytes: number | null;
    /** WAL the server keeps for the slot: pg_current_wal_lsn() − restart_lsn. */
    retainedWalBytes: number | null;
    walStatus: string | null;
    /** The last LSN durable in the outbox (replication_state). */
    durableLsn: string | null;
  };
  /** The session holding the leader lock: an instance's application_name names its host and pid. */
  leader: (Omit<LockHolder, 'backendStart'> & { backendStart: string | null }) | null;
  schema: { name: string; migrated: boolean };
  outbox: { pending: number; due: number; inflight: number; oldestPendingAgeSeconds: number | null };
  requests: { unresolved: number; oldestUnresolvedAgeSeconds: number | null };
  deadLetters: { count: number; byCode: Record<string, number>; byMapping: Record<string, number> };
  /** Mappings whose removals the guard holds, or about which an operator decided; null before the guard's migration. */
  removals: RemovalStatus[] | null;
  /** One entry per mapping that has snapshot progress, or null when the table does not exist. */
  snapshot: SnapshotStatus[] | null;
  lastError: { source: 'outbox' | 'deadLetter'; mapping: string; key: string; message: string; at: string } | null;
}

/** A mapping's mass-removal guard: the hold, if any, and the operator's latest decision. */
export interface RemovalStatus {
  mapping: string;
  held: boolean;
  /** Removals held, as the leader last counted them. */
  heldContacts: number;
  heldSince: string | null;
  cause: string | null;
  /** What to run about a hold (it lists the removals and says how to approve or discard them); null when none. */
  command: string | null;
  lastDecision: { decision: 'approve' | 'discard'; contacts: number; decidedBy: string; decidedAt: string } | null;
}

/** A mapping's snapshot (snapshot_progress), in the same camelCase as the rest of the report. */
export interface SnapshotStatus {
  mapping: string;
  /** False while running, and for one that stopped halfway (the next `run` or `snapshot` resumes it). */
  finished: boolean;
  rowsDone: number;
  /** What the snapshot expects to read: exact for small tables, an estimate for large ones; null if unknown. */
  rowsExpected: number | null;
  chunksDone: number;
  /** The last key written (text form of the key column); null before the first chunk. */
  lastKey: string | null;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Seconds since the last chunk was written, by the database's clock. */
  secondsSinceUpdate: number;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** `configFile`: the file the operator passed, for the commands status suggests. */
export async function readStatus(config: Config, configFile = 'FILE'): Promise<Status> {
  const { url, slot, schema, applicationName } = config.postgres;
  const client = new pg.Client({ connectionString: url, application_name: `${applicationName} status`.slice(0, 63) });
  client.on('error', () => undefined); // a lost connection fails the query in progress; never the process
  await client.connect();
  try {
    const q = (name: string) => `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`;
    const exists = async (name: string) =>
      (await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [q(name)])).rows[0]?.ok === true;

    const s = (
      await client.query<{ active: boolean; active_pid: number | null; confirmed: string | null; restart: string | null; lag: string | null; retained: string | null; wal_status: string | null }>(
        `SELECT active, active_pid, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart,
                pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag,
                pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained, wal_status
         FROM pg_replication_slots WHERE slot_name = $1`,
        [slot],
      )
    ).rows[0];
    const holder = await lockHolder(client, slot);
    const status: Status = {
      slot: {
        name: slot,
        exists: s !== undefined,
        active: s?.active ?? false,
        activePid: s?.active_pid ?? null,
        confirmedFlushLsn: s?.confirmed ?? null,
        restartLsn: s?.restart ?? null,
        lagBytes: num(s?.lag),
        retainedWalBytes: num(s?.retained),
        walStatus: s?.wal_status ?? null,
        durableLsn: null,
      },
      leader: holder ? { ...holder, backendStart: holder.backendStart ? new Date(holder.backendStart).toISOString() : null } : null,
      schema: { name: schema, migrated: await exists('outbox') },
      outbox: { pending: 0, due: 0, inflight: 0, oldestPendingAgeSeconds: null },
      requests: { unresolved: 0, oldestUnresolvedAgeSeconds: null },
      deadLetters: { count: 0, byCode: {}, byMapping: {} },
      removals: null,
      snapshot: null,
      lastError: null,
    };
    if (await exists('snapshot_progress')) {
      const { rows } = await client.query<{
        mapping: string;
        cursor: string | null;
        rows_done: string;
        rows_total: string | null;
        chunks_done: number;
        started_at: Date;
        updated_at: Date;
        finished_at: Date | null;
        since: number;
      }>(
        `SELECT mapping, cursor, rows_done, rows_total, chunks_done, started_at, updated_at, finished_at,
                EXTRACT(EPOCH FROM now() - updated_at)::float8 AS since
         FROM ${q('snapshot_progress')} ORDER BY mapping LIMIT 100`,
      );
      status.snapshot = rows.map((r) => ({
        mapping: r.mapping,
        finished: r.finished_at !== null,
        rowsDone: Number(r.rows_done),
        rowsExpected: num(r.rows_total),
        chunksDone: r.chunks_done,
        lastKey: r.cursor,
        startedAt: new Date(r.started_at).toISOString(),
        updatedAt: new Date(r.updated_at).toISOString(),
        finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
        secondsSinceUpdate: r.since,
      }));
    }
    if (!status.schema.migrated) return status;

    const repl = await client.query<{ lsn: string }>(`SELECT durable_lsn::text AS lsn FROM ${q('replication_state')} WHERE slot = $1`, [slot]);
    status.slot.durableLsn = repl.rows[0]?.lsn ?? null;

    const outbox = await client.query<{ state: string; n: number; due: number; oldest: number | null }>(
      `SELECT state, count(*)::int AS n, count(*) FILTER (WHERE next_attempt_at <= now())::int AS due,
              EXTRACT(EPOCH FROM now() - min(enqueued_at))::float8 AS oldest
       FROM ${q('outbox')} GROUP BY state`,
    );
    for (const r of outbox.rows) {
      if (r.state === 'pending') Object.assign(status.outbox, { pending: r.n, due: r.due, oldestPendingAgeSeconds: r.oldest });
      else if (r.state === 'inflight') status.outbox.inflight = r.n;
    }

    const req = await client.query<{ n: number; oldest: number | null }>(
      `SELECT count(*)::int AS n, EXTRACT(EPOCH FROM now() - min(sent_at))::float8 AS oldest FROM ${q('requests')} WHERE status = 'new'`,
    );
    status.requests = { unresolved: req.rows[0]?.n ?? 0, oldestUnresolvedAgeSeconds: req.rows[0]?.oldest ?? null };

    const dead = await client.query<{ mapping: string; code: string; n: number }>(
      `SELECT mapping, error_code AS code, count(*)::int AS n FROM ${q('dead_letters')} GROUP BY 1, 2`,
    );
    for (const r of dead.rows) {
      status.deadLetters.count += r.n;
      status.deadLetters.byCode[r.code] = (status.deadLetters.byCode[r.code] ?? 0) + r.n;
      status.deadLetters.byMapping[r.mapping] = (status.deadLetters.byMapping[r.mapping] ?? 0) + r.n;
    }

    if (await exists('removal_guard')) {
      const { rows } = await client.query<{
        mapping: string;
        held_since: Date | null;
        held_count: number | null;
        cause: string | null;
        decision: 'approve' | 'discard' | null;
        contacts: number | null;
        decided_by: string | null;
        decided_at: Date | null;
      }>(
        `SELECT m.mapping, g.held_since, g.held_count, g.cause, d.decision, d.contacts, d.decided_by, d.decided_at
         FROM (SELECT mapping FROM ${q('removal_guard')} WHERE held_since IS NOT NULL UNION SELECT mapping FROM ${q('removal_decisions')}) m
         LEFT JOIN ${q('removal_guard')} g ON g.mapping = m.mapping
         LEFT JOIN LATERAL (SELECT * FROM ${q('removal_decisions')} x WHERE x.mapping = m.mapping ORDER BY x.decided_at DESC, x.id DESC LIMIT 1) d ON true
         ORDER BY m.mapping LIMIT 100`,
      );
      status.removals = rows.map((r) => ({
        mapping: r.mapping,
        held: r.held_since !== null,
        heldContacts: r.held_since !== null ? (r.held_count ?? 0) : 0,
        heldSince: r.held_since ? new Date(r.held_since).toISOString() : null,
        cause: r.held_since !== null ? r.cause : null,
        command: r.held_since !== null ? `wooxy-cdc removals list --mapping ${r.mapping} --config ${configFile}` : null,
        lastDecision:
          r.decision && r.decided_at ? { decision: r.decision, contacts: r.contacts ?? 0, decidedBy: r.decided_by ?? '', decidedAt: new Date(r.decided_at).toISOString() } : null,
      }));
    }

    const last = await client.query<{ source: 'outbox' | 'deadLetter'; mapping: string; key: string; message: string; at: Date }>(
      `(SELECT 'outbox' AS source, mapping, source_key AS key, last_error AS message, updated_at AS at
          FROM ${q('outbox')} WHERE last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 1)
       UNION ALL
       (SELECT 'deadLetter', mapping, source_key, error_code || ': ' || human_error, last_seen
          FROM ${q('dead_letters')} ORDER BY last_seen DESC LIMIT 1)
       ORDER BY at DESC LIMIT 1`,
    );
    const l = last.rows[0];
    status.lastError = l ? { ...l, at: new Date(l.at).toISOString() } : null;
    return status;
  } finally {
    await client.end();
  }
}
