import type { Config } from '../config/schema.js';
import { createDb, dbOptions, type DbHandle } from '../db/index.js';
import { appliedMigrations } from '../db/migrator.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { lockHolder, type LockHolder } from '../ha/leader.js';
import { errorText } from '../lib/loop.js';
import { isConnectionError } from '../store/retry.js';
import { storeContext, type StoreContext } from '../store/context.js';
import { countDeadLetters } from '../store/dead-letters.js';
import { lastDeadLetter, lastDeliveryError, lastReconcileError, lastSourceError, recentGaps, type StageErrorRow } from '../store/incidents.js';
import { loadMappingRecords } from '../store/lifecycle.js';
import { listOrphans } from '../store/orphans.js';
import { currentPauses } from '../store/pauses.js';
import { currentTerm, durableLsn, guardStatuses, outboxSummary, ping, publicationExists, readConsistently, readSlot, requestSummary, snapshotProgress, type SlotRow } from '../store/status.js';
import { assess, GAP_RECENT_HOURS, type Health, type Problem } from './health.js';

/**
 * What `wooxy-cdc status` reports, and /status serves: read from Postgres (the connector need not run), and
 * judged (health.ts) into healthy, degraded or down with one problem per thing to fix. Read-only: a schema that
 * is not migrated is reported as such, never created. Every key is camelCase; times are ISO strings, and each
 * time that says how old something is comes with its age in seconds by the database's clock.
 */
export interface Status {
  generatedAt: string;
  health: Health;
  problems: Problem[];
  postgres: { reachable: boolean; error: string | null };
  /** The slot as pg_replication_slots has it (all null while it does not exist), and the durable LSN. */
  slot: SlotRow & {
    name: string;
    exists: boolean;
    /** The last LSN durable in the outbox (replication_state). */
    durableLsn: string | null;
  };
  publication: { name: string; exists: boolean };
  /** The session holding the leader lock: an instance's application_name names its host and pid. */
  leader: (Omit<LockHolder, 'backendStart'> & { backendStart: string | null }) | null;
  /** The current (or last) term of leadership, as the leader table has it. */
  term: { epoch: string; electedAt: string } | null;
  schema: { name: string; migrated: boolean; pending: string[] };
  /** How far behind the connector is: WAL not yet durable in the outbox, and the age of the oldest durable pending entry. */
  lag: { bytes: number | null; seconds: number | null };
  /** Each configured mapping: running, stopped (with its reason), paused (with its cause), or new (never run yet). */
  mappings: MappingStatus[];
  outbox: { pending: number; due: number; inflight: number; oldestPendingAgeSeconds: number | null };
  requests: { unresolved: number; oldestUnresolvedAgeSeconds: number | null; pastWarning: number; warnAfterHours: number };
  deadLetters: { count: number; byCode: Record<string, number>; byMapping: Record<string, number> };
  /** Mappings whose removals the guard holds, or about which an operator decided. */
  removals: RemovalStatus[];
  /** Mappings the connector's tables know that this configuration does not, with what they hold. */
  orphans: OrphanStatus[];
  /** One entry per mapping that has snapshot progress. */
  snapshot: SnapshotStatus[];
  /** Source gaps (the stream missed changes; every mapping was reconciled) of the last GAP_RECENT_HOURS. */
  sourceGaps: StageError[];
  /** Each stage's latest error with its time: an old one is history, not the current problem. */
  lastErrors: { source: StageError | null; delivery: StageError | null; reconciliation: StageError | null; deadLetters: StageError | null };
}

export interface StageError {
  code: string | null;
  mapping: string | null;
  key: string | null;
  message: string;
  at: string;
  ageSeconds: number;
}

export interface MappingStatus {
  name: string;
  table: string;
  listId: string;
  state: 'running' | 'stopped' | 'paused' | 'new';
  stop: { code: string; reason: string; lsn: string | null; since: string } | null;
  pause: { cause: string; since: string; ageSeconds: number } | null;
}

export interface OrphanStatus {
  mapping: string;
  pending: number;
  inflight: number;
  contacts: number;
  deadLetters: number;
  /** The instance leading now runs this mapping: its configuration differs from this one. */
  runByLeader: boolean;
  /** What forgets it (its contacts stay in Wooxy as they are). */
  command: string;
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

/** A statement that takes longer than this is a status that does not answer: a check must end. */
const STATEMENT_TIMEOUT_MS = 10_000;

const iso = (d: Date) => new Date(d).toISOString();
const stage = (r: StageErrorRow | null): StageError | null => (r ? { ...r, at: iso(r.at) } : null);

/** A report before anything is read: what status says when it can read nothing more. */
function blank(config: Config): Omit<Status, 'health' | 'problems'> {
  const { slot, publication, schema } = config.postgres;
  return {
    generatedAt: new Date().toISOString(),
    postgres: { reachable: true, error: null },
    slot: { name: slot, exists: false, active: false, activePid: null, confirmedFlushLsn: null, restartLsn: null, lagBytes: null, retainedWalBytes: null, walStatus: null, durableLsn: null },
    publication: { name: publication, exists: false },
    leader: null,
    term: null,
    schema: { name: schema, migrated: false, pending: [] },
    lag: { bytes: null, seconds: null },
    mappings: config.mappings.map((m) => ({ name: m.name, table: m.table, listId: m.contactListId, state: 'new', stop: null, pause: null })),
    outbox: { pending: 0, due: 0, inflight: 0, oldestPendingAgeSeconds: null },
    requests: { unresolved: 0, oldestUnresolvedAgeSeconds: null, pastWarning: 0, warnAfterHours: config.reconcile.warnAfterHours },
    deadLetters: { count: 0, byCode: {}, byMapping: {} },
    removals: [],
    orphans: [],
    snapshot: [],
    sourceGaps: [],
    lastErrors: { source: null, delivery: null, reconciliation: null, deadLetters: null },
  };
}

/**
 * Reads and judges the status through `handle` (the connector's own pool for /status, a small one of the CLI's).
 * Postgres unreachable is a report (down), not an exception. `configFile`: the file the operator passes, for the
 * commands the report suggests.
 */
export async function readStatus(handle: Pick<DbHandle, 'db' | 'schema' | 'pool' | 'source' | 'separate'>, config: Config, configFile = 'FILE'): Promise<Status> {
  const s = blank(config);
  const ctx = storeContext(handle);
  let answered = false;
  try {
    const silent = await ping(ctx);
    const where = (what: string | null, db: string) => (what === null ? [] : [`${db}: ${what}`]);
    const failures = [...where(silent.state, ctx.separate ? 'the state database (postgres.stateUrl)' : 'postgres.url'), ...where(silent.source, 'the source database (postgres.url)')];
    if (failures.length > 0) {
      s.postgres = { reachable: false, error: failures.join('; ') };
      return { ...s, ...assess(s, config, configFile) };
    }
    answered = true;
    await read(ctx, handle, config, configFile, s);
  } catch (e) {
    // What could not be read is said (down), never thrown: a check must answer. No answer at all, or a
    // connection lost midway, is the server unreachable; anything else (a privilege, a timeout) is a report
    // that could not be read.
    s.postgres = { reachable: answered && !isConnectionError(e), error: errorText(e) };
  }
  return { ...s, ...assess(s, config, configFile) };
}

async function read(ctx: StoreContext, handle: Pick<DbHandle, 'pool'>, config: Config, configFile: string, s: Omit<Status, 'health' | 'problems'>): Promise<void> {
  const { slot, publication, schema } = config.postgres;
  const applied = new Set(await appliedMigrations(ctx.db, schema));
  const pending = MIGRATIONS.map(([name]) => name).filter((name) => !applied.has(name));
  s.schema = { name: schema, migrated: pending.length === 0, pending };
  // The leader lock lives with the state; the slot and the publication with the source.
  const holder = await lockHolder(handle.pool, slot);
  s.leader = holder ? { ...holder, backendStart: holder.backendStart ? iso(holder.backendStart) : null } : null;
  const configured = config.mappings.map((m) => m.name);
  const slotRow = await readSlot(ctx, slot);
  if (slotRow) s.slot = { ...s.slot, exists: true, ...slotRow };
  s.lag.bytes = slotRow?.lagBytes ?? null;
  s.publication.exists = await publicationExists(ctx, publication);
  // A schema this version cannot read whole says so (down) and nothing more: its tables may lack columns.
  if (!s.schema.migrated) return;
  await readConsistently(ctx, STATEMENT_TIMEOUT_MS, async (r) => {
    s.slot.durableLsn = await durableLsn(r, slot);
    const term = await currentTerm(r, slot);
    s.term = term ? { epoch: term.epoch, electedAt: iso(term.electedAt) } : null;

    const records = await loadMappingRecords(r);
    // A pause is the leading instance's; with no instance leading, its term has ended and so has the pause.
    const pauses = new Map((holder ? await currentPauses(r, slot) : []).map((p) => [p.mapping, p]));
    s.mappings = s.mappings.map((m) => {
      const rec = records.get(m.name);
      const p = pauses.get(m.name);
      const stop = rec?.stop ? { code: rec.stop.code, reason: rec.stop.reason, lsn: rec.stop.lsn, since: iso(rec.stop.at) } : null;
      const pause = p ? { cause: p.cause, since: iso(p.since), ageSeconds: p.ageSeconds } : null;
      return { ...m, state: stop ? 'stopped' : pause ? 'paused' : rec ? 'running' : 'new', stop, pause };
    });

    const { lagSeconds, ...outbox } = await outboxSummary(r, slot, configured);
    s.outbox = outbox;
    s.lag.seconds = lagSeconds;
    s.requests = { ...(await requestSummary(r, config.reconcile.warnAfterHours)), warnAfterHours: config.reconcile.warnAfterHours };
    for (const d of await countDeadLetters(r)) {
      s.deadLetters.count += d.n;
      s.deadLetters.byCode[d.code] = (s.deadLetters.byCode[d.code] ?? 0) + d.n;
      s.deadLetters.byMapping[d.mapping] = (s.deadLetters.byMapping[d.mapping] ?? 0) + d.n;
    }
    s.removals = (await guardStatuses(r)).map((g) => ({
      mapping: g.mapping,
      held: g.heldSince !== null,
      heldContacts: g.heldCount,
      heldSince: g.heldSince ? iso(g.heldSince) : null,
      cause: g.cause,
      command: g.heldSince !== null ? `wooxy-cdc removals list --mapping ${g.mapping} --config ${configFile}` : null,
      lastDecision: g.lastDecision ? { ...g.lastDecision, decidedAt: iso(g.lastDecision.decidedAt) } : null,
    }));
    s.orphans = (await listOrphans(r, configured, slot)).map(({ recordedThisTerm, ...o }) => ({
      ...o,
      runByLeader: recordedThisTerm && holder !== null,
      command: `wooxy-cdc orphans discard --mapping ${o.mapping} --config ${configFile}`,
    }));
    s.snapshot = (await snapshotProgress(r)).map((p) => ({
      mapping: p.mapping,
      finished: p.finishedAt !== null,
      rowsDone: p.rowsDone,
      rowsExpected: p.rowsTotal,
      chunksDone: p.chunksDone,
      lastKey: p.cursor,
      startedAt: iso(p.startedAt),
      updatedAt: iso(p.updatedAt),
      finishedAt: p.finishedAt ? iso(p.finishedAt) : null,
      secondsSinceUpdate: p.since,
    }));
    s.sourceGaps = (await recentGaps(r, GAP_RECENT_HOURS)).map((g) => stage(g)!);
    s.lastErrors = {
      source: stage(await lastSourceError(r)),
      delivery: stage(await lastDeliveryError(r)),
      reconciliation: stage(await lastReconcileError(r)),
      deadLetters: stage(await lastDeadLetter(r)),
    };
  });
}

/**
 * The CLI's way in: a pool of its own (the report, and the lock holder on a second connection), which fails
 * fast on a server that does not answer, closed afterwards.
 */
export async function statusOf(config: Config, configFile: string): Promise<Status> {
  const handle = createDb(dbOptions(config.postgres, { purpose: 'status', poolSize: 2, sourcePoolSize: 1, connectTimeoutMs: STATEMENT_TIMEOUT_MS }));
  try {
    return await readStatus(handle, config, configFile);
  } finally {
    await handle.close();
  }
}
