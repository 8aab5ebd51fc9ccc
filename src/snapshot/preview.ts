import type { DbHandle } from '../db/index.js';
import { describeCondition, type Mapper, type Row } from '../mapping/mapper.js';
import { desiredOf } from '../outbox/desired.js';
import { storeContext } from '../store/context.js';
import { exceedsGuard, guardOff, type GuardSettings } from '../outbox/removal-guard.js';
import { countSynced, listStates, readStates, recordedListId, schemaTables, type StoredState } from '../store/inspect.js';
import { classifyGone, classifyRow, Tally, type Change, type Example, type PreviewMode } from './classify.js';
import { ChunkReader, describeTable, estimateRows } from './reader.js';
import type { ProgressReporter } from './report.js';

/**
 * The dry runs of `snapshot` and `resync`, and `plan`: the same reader (keyset chunks, one READ ONLY
 * transaction each, so memory holds one chunk), the same mapper, and the stored states of each chunk's
 * contacts, classified by classify.ts. Nothing is written: no migration, no slot or publication, no snapshot
 * lock or progress row, no outbox entry, no dead letter. A schema the connector never created reads as no
 * state at all (every contact is new). The predicate check of a --where parses it into a temporary view that
 * is rolled back, as the real resync does.
 *
 * What it cannot know: rows changed while it reads (the real command decides those against the stream's
 * transactions, src/snapshot/runner.ts), and what Wooxy holds beyond the connector's record of it.
 */
export interface PreviewOptions {
  handle: DbHandle;
  mapper: Mapper;
  mode: PreviewMode;
  chunkSize: number;
  /** resync: the rows to read (checked first, as the real resync checks it). */
  where?: string;
  /** Also walk the contact states whose rows are gone (snapshot --reconcile; plan always does). */
  sweep?: boolean;
  /** Examples kept of each change. */
  examples?: number;
  /** The mapping's mass-removal guard: whether the removals counted would be held. */
  guard?: GuardSettings;
  signal?: AbortSignal;
  progress?: ProgressReporter;
}

export interface PreviewOutcome {
  mapping: string;
  mode: PreviewMode;
  table: string;
  listId: string;
  where: string | null;
  /** False when stopped before the end (a signal): the counts are of what was read. */
  finished: boolean;
  rows: number;
  /** Contact states the sweep checked for rows gone (0 without a sweep). */
  statesChecked: number;
  counts: Record<Change, number>;
  examples: Record<Change, Example[]>;
  /** Contacts the command would queue (plan: 0, it queues nothing). */
  queued: number;
  /** plan: the list this mapping last synced to, when the configuration names another (every contact is new there). */
  listChangedFrom: string | null;
  /** Whether the connector's schema exists: without it, no contact is known. */
  migrated: boolean;
  /**
   * The removals counted are a mass removal the guard would hold (until `removals approve`), against the
   * mapping's synced contacts and limits; null without a guard or with it off.
   */
  guard: { wouldHold: boolean; synced: number; removePercent: number; minRemovals: number } | null;
  seconds: number;
}

export async function runPreview(opts: PreviewOptions): Promise<PreviewOutcome> {
  const { handle, mapper, mode } = opts;
  const started = Date.now();
  const ctx = storeContext(handle);
  const tables = await schemaTables(ctx);
  const table = await describeTable(handle.source.db, mapper);
  const reader = new ChunkReader(handle.source.db, mapper, table, opts.where);
  await reader.validate();
  const recorded = mode === 'plan' && tables.mappings ? await recordedListId(ctx, mapper.name) : null;
  const listChanged = recorded !== null && recorded !== mapper.listId;
  const tally = new Tally(opts.examples ?? 3);
  const outcome: PreviewOutcome = {
    mapping: mapper.name,
    mode,
    table: `${mapper.schema}.${mapper.table}`,
    listId: mapper.listId,
    where: opts.where ?? null,
    finished: false,
    rows: 0,
    statesChecked: 0,
    counts: tally.counts,
    examples: tally.examples,
    queued: 0,
    listChangedFrom: listChanged ? recorded : null,
    migrated: tables.migrated,
    guard: null,
    seconds: 0,
  };
  const states = async (keys: string[]) => (tables.migrated ? readStates(ctx, mapper.name, keys) : new Map<string, StoredState>());
  const whyOut = (row: Row) => `filtered out (${mapper.unmet(row).map(describeCondition).join(', ')})`;
  const rowsTotal = opts.progress ? await estimateRows(handle.source.db, table, opts.where) : null;

  let cursor: string | null = null;
  for (;;) {
    if (opts.signal?.aborted) return done();
    const chunk = await reader.read(cursor, opts.chunkSize);
    const keyed = chunk.rows.map((row) => ({ row, key: mapper.keyOf(row) })).filter((r): r is { row: typeof r.row; key: string } => r.key !== null);
    const stored = await states(keyed.map((r) => r.key));
    for (const { row, key } of keyed) tally.add(key, classifyRow(mode, desiredOf(mapper, row), whyOut(row), stored.get(key), listChanged));
    outcome.rows += chunk.rows.length;
    opts.progress?.update({ mapping: mapper.name, mode, rowsDone: outcome.rows, rowsTotal, runRows: outcome.rows, elapsedMs: Date.now() - started });
    if (chunk.rows.length < opts.chunkSize) break;
    cursor = chunk.lastKey;
  }
  // Contacts whose rows are gone: pages of states in key order, each checked against the table.
  if ((opts.sweep || mode === 'plan') && tables.migrated) {
    let after: string | null = null;
    for (;;) {
      if (opts.signal?.aborted) return done();
      const page = await listStates(ctx, mapper.name, after, opts.chunkSize);
      const gone = new Set((await reader.absent(page.map((s) => s.key))).keys);
      for (const s of page) {
        if (!gone.has(s.key)) continue;
        const v = classifyGone(mode, s, listChanged);
        if (v) tally.add(s.key, v);
      }
      outcome.statesChecked += page.length;
      if (page.length < opts.chunkSize) break;
      after = page.at(-1)!.key;
    }
  }
  const g = opts.guard;
  if (g && !guardOff(g)) {
    // The contacts Wooxy holds for this mapping now, as the guard counts them (another list holds none yet).
    const synced = tables.migrated && !listChanged ? await countSynced(ctx, mapper.name) : 0;
    outcome.guard = { wouldHold: exceedsGuard(tally.counts.remove, synced, g), synced, removePercent: g.removePercent, minRemovals: g.minRemovals };
  }
  outcome.finished = true;
  opts.progress?.done({ mapping: mapper.name, mode, rowsDone: outcome.rows, rowsTotal: outcome.rows, runRows: outcome.rows, elapsedMs: Date.now() - started });
  return done();

  function done(): PreviewOutcome {
    outcome.queued = tally.queued;
    outcome.seconds = (Date.now() - started) / 1000;
    return outcome;
  }
}
