/**
 * Snapshots: the rows a mapped table already holds, synced through the same outbox as the stream, while the
 * stream keeps running.
 *
 * READING. Keyset pagination in the mapping's key order (`key > cursor ORDER BY key LIMIT n`, compared as the
 * key column's own type), one chunk per REPEATABLE READ, READ ONLY transaction. Its first statement takes
 * the transaction's MVCC snapshot and, within it, S = pg_current_wal_insert_lsn(): the chunk's watermark.
 * Each chunk is written in its own transaction together with the cursor (snapshot_progress), so a restart
 * resumes after the last chunk that is durable, and memory holds one chunk at a time.
 *
 * ORDERING AGAINST THE STREAM. The slot exists before the first chunk is read, so every version of a row is
 * either visible to a chunk's snapshot or decoded by the stream, or both. For one row, versions are totally
 * ordered: a writer waits for the previous writer of the row to finish, so commit order, WAL order and
 * visibility agree row by row. A chunk row is therefore the newest version its snapshot could see, and the
 * stream's stored version of that row (contact_state) is older than or the same as it exactly when the
 * stream's transaction is visible to the chunk's snapshot. So a chunk row is applied only when
 *   - the stream wrote the stored state in a transaction the chunk's snapshot saw (contact_state.xid, checked
 *     with pg_visible_in_snapshot); a transaction the snapshot did not see wrote a newer version: it wins;
 *   - a snapshot chunk wrote it (xid null) from a read older than this one (its lsn, the older watermark, < S);
 *   - no state exists and the row still exists at the source when the chunk is written. Without that check,
 *     a delete streamed between the read and the write — whose state delivery may already have collected —
 *     would be undone by the stale read.
 * Comparing LSNs alone ("apply when contact_state.lsn < S") is not enough: a transaction that has written
 * its commit record (lsn < S) but not yet left the proc array when the snapshot is taken is invisible to
 * the read, and with synchronous_commit or synchronous replication that window lasts a WAL flush or a
 * standby's round trip. The xid check decides it the same way the proc array did. (S itself is the insert
 * position, not pg_current_wal_lsn(), the write position, which can trail a visible commit record under
 * synchronous_commit = off.)
 *
 * Changes the stream applies after a chunk are applied as they come, in commit order, newest last: the last
 * change the stream writes for a row is the row's latest version, so stream and snapshot converge. A row
 * absent from a chunk is not touched: the stream delivers its delete.
 *
 * DELIVERY. A chunk's outbox entries carry lsn = S, and delivery sends an entry only once the durable LSN
 * (replication_state) has passed it: by then every transaction committed before the read is in the outbox,
 * so a chunk never sends a value the stream is about to replace with an older one. Each chunk's transaction
 * also writes a logical message the stream decodes, so the durable LSN passes S even when the mapped tables
 * are idle (Postgres skips transactions that touch no published table).
 *
 * COMPARED WITH. Netflix's DBLog and Debezium's incremental snapshots bracket each chunk's SELECT between a
 * low and a high watermark written to the log, and drop from the chunk every key the log changed between
 * the two; Sequin's backfills do the same with logical messages. They resolve the race in the log consumer;
 * here the outbox holds the stream's position per contact (lsn, xid), so the chunk writer resolves it row
 * by row against that state, and the stream needs no snapshot awareness. Chunk writes and stream writes take
 * turns (takeWriterTurn in src/store/capture.ts) so the state cannot move between the decision and the write.
 */
import type { DbHandle } from '../db/index.js';
import { CdcError } from '../errors.js';
import { failpoint } from '../failpoints.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SnapshotWriter } from '../outbox/snapshot-writer.js';
import { storeContext } from '../store/context.js';
import { ProgressStore } from '../store/progress.js';
import { listContactKeys } from '../store/snapshot.js';
import { waitForStream, type CatchUpOptions } from './catch-up.js';
import { ChunkReader, describeTable, estimateRows, type SweepChunk } from './reader.js';
import type { ProgressReporter } from './report.js';
import type { SnapshotChunk } from './types.js';

export interface RunnerOptions {
  handle: DbHandle;
  mapper: Mapper;
  writer: SnapshotWriter;
  chunkSize: number;
  log: Logger;
  metrics?: Metrics;
  progress?: ProgressReporter;
  /** Stops between chunks; what is written stays written, and a snapshot resumes from it. */
  signal?: AbortSignal;
  /** Test seam: runs after a chunk is read and before it is written. */
  afterRead?: (chunk: SnapshotChunk) => Promise<void>;
  /** Test seam: runs after a sweep chunk is read and before it is written. */
  afterSweepRead?: (chunk: SweepChunk) => Promise<void>;
  /** A reconciliation first waits for the stream to pass where the WAL stands (catch-up.ts); unset: it does not. */
  catchUp?: CatchUpOptions;
}

/**
 * `restart`: from the first key even when a snapshot finished or is halfway. `reconcile` (with restart): also
 * remove the contacts whose rows are gone or fail the filter, by a sweep of the contact states after the rows.
 * A snapshot resumed halfway keeps the kind it was started as.
 */
export type RunMode = { kind: 'snapshot'; restart: boolean; reconcile?: boolean; reason?: string } | { kind: 'resync'; where?: string };

export interface RunOutcome {
  mapping: string;
  /** False when stopped before the end. */
  finished: boolean;
  /** True when a snapshot had finished before and nothing was read. */
  alreadyDone: boolean;
  /** The cursor this run started after (a resumed snapshot); null from the start. */
  resumedAfter: string | null;
  /** Rows and chunks read by this run. */
  rows: number;
  chunks: number;
  applied: number;
  enqueued: number;
  deadLettered: number;
  /** Whether this run reconciled (swept the contact states); contacts it queued for removal. */
  reconciled: boolean;
  removed: number;
  seconds: number;
}

/** Second key of a mapping's snapshot lock (two-key advisory lock; the first is hashtext(schema/mapping)). */
const SNAPSHOT_LOCK = 0x57_43_02;

/**
 * Runs one mapping's snapshot (resuming one that stopped halfway) or a resync of a subset of its rows.
 * A snapshot holds a session advisory lock on its mapping, so two processes never run the same one.
 */
export async function runSnapshot(opts: RunnerOptions, mode: RunMode): Promise<RunOutcome> {
  const { handle, mapper, log } = opts;
  const started = Date.now();
  const table = await describeTable(handle.source.db, mapper);
  if (!table.keyIndexed) log.warn({ mapping: mapper.name, key: mapper.key }, `no index leads with ${mapper.key}: every snapshot chunk scans ${table.qualified}`);
  const reader = new ChunkReader(handle.source.db, mapper, table, mode.kind === 'resync' ? mode.where : undefined);
  const store = new ProgressStore(storeContext(handle));
  const outcome: RunOutcome = { mapping: mapper.name, finished: false, alreadyDone: false, resumedAfter: null, rows: 0, chunks: 0, applied: 0, enqueued: 0, deadLettered: 0, reconciled: false, removed: 0, seconds: 0 };

  const lock = mode.kind === 'snapshot' ? await handle.pool.connect() : null;
  try {
    let cursor: string | null = null;
    let rowsDone = 0;
    let rowsTotal: number | null;
    let sweep: { cursor: string | null } | null = null;
    let what = 'snapshot';
    if (lock) {
      const got = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), $2) AS ok', [`${handle.schema}/${mapper.name}`, SNAPSHOT_LOCK]);
      if (!got.rows[0]?.ok) throw new CdcError('SNAPSHOT_BUSY', `a snapshot of mapping ${mapper.name} is running in another process`);
      const before = mode.kind === 'snapshot' && !mode.restart ? await store.get(mapper.name) : null;
      if (before?.finishedAt) return { ...outcome, finished: true, alreadyDone: true };
      const reconcile = mode.kind === 'snapshot' && mode.reconcile === true;
      const p = before ?? (await store.begin(mapper.name, await estimateRows(handle.source.db, table), { reconcile, reason: mode.kind === 'snapshot' ? (mode.reason ?? null) : null }));
      cursor = p.cursor;
      rowsDone = p.rowsDone;
      rowsTotal = p.rowsTotal;
      outcome.resumedAfter = p.cursor;
      outcome.reconciled = p.reconcile;
      outcome.removed = 0;
      what = p.reconcile ? 'reconciliation' : 'snapshot';
      if (p.phase === 'sweep') sweep = { cursor: p.sweepCursor };
      // Rows and sweep alike: a change the stream replays after a read must not be older than the reason for it.
      if (p.reconcile && opts.catchUp) await waitForStream(opts.catchUp, mapper.name, opts.signal);
      const why = p.reason ? ` (${p.reason})` : '';
      if (p.cursor === null && p.phase === 'rows') log.info({ mapping: mapper.name, rowsTotal, chunkSize: opts.chunkSize, reason: p.reason }, `${what} of ${mapper.name} started${why}`);
      else log.info({ mapping: mapper.name, cursor: p.cursor, phase: p.phase, rowsDone, rowsTotal, reason: p.reason }, `${what} of ${mapper.name} resumed${p.phase === 'sweep' ? ' at its sweep' : ` after key ${p.cursor}`}${why}`);
    } else {
      await reader.validate();
      rowsTotal = await estimateRows(handle.source.db, table, mode.kind === 'resync' ? mode.where : undefined);
      log.info({ mapping: mapper.name, rowsTotal, where: mode.kind === 'resync' ? (mode.where ?? null) : null }, `resync of ${mapper.name} started`);
    }
    const report = () => ({ mapping: mapper.name, mode: mode.kind, rowsDone, rowsTotal, runRows: outcome.rows, elapsedMs: Date.now() - started });
    // The gauges follow snapshots; a resync is counted in snapshotRows only.
    const gauges = lock ? opts.metrics : undefined;
    gauges?.snapshotRowsTotal.set({ mapping: mapper.name }, rowsTotal ?? 0);
    gauges?.snapshotRowsDone.set({ mapping: mapper.name }, rowsDone);

    for (;;) {
      if (sweep !== null || opts.signal?.aborted) break;
      const chunk = await reader.read(cursor, opts.chunkSize);
      await opts.afterRead?.(chunk);
      const last = chunk.rows.length < opts.chunkSize;
      if (lock && chunk.rows.length === 0) {
        await store.finishRows(mapper.name);
      } else if (chunk.rows.length > 0) {
        // A chunk's write that loses a deadlock or serialization race is atomic and runs again (store/tx.ts).
        const w = await opts.writer.write(chunk, {
          source: table,
          force: mode.kind === 'resync',
          inTransaction: lock ? (trx) => store.advance(trx, mapper.name, { cursor: chunk.lastKey, rows: chunk.rows.length, watermark: chunk.watermark, finished: last }) : undefined,
        });
        failpoint('snapshot.after-chunk');
        outcome.chunks++;
        outcome.rows += chunk.rows.length;
        outcome.applied += w.applied;
        outcome.enqueued += w.enqueued;
        outcome.deadLettered += w.deadLettered;
        rowsDone += chunk.rows.length;
        if (rowsTotal !== null && rowsDone > rowsTotal) rowsTotal = rowsDone;
        cursor = chunk.lastKey;
        opts.metrics?.snapshotRows.inc({ mapping: mapper.name, mode: mode.kind }, chunk.rows.length);
        gauges?.snapshotRowsDone.set({ mapping: mapper.name }, rowsDone);
        opts.progress?.update(report());
      }
      if (last) {
        if (outcome.reconciled) sweep = { cursor: null };
        else outcome.finished = true;
        break;
      }
    }
    // A reconciliation's second phase: the contacts whose rows are gone become removals.
    while (sweep !== null && !opts.signal?.aborted) {
      const keys = await listContactKeys(storeContext(handle), mapper.name, sweep.cursor, opts.chunkSize);
      const gone = await reader.absent(keys);
      await opts.afterSweepRead?.(gone);
      const last = keys.length < opts.chunkSize;
      const next = keys.at(-1) ?? sweep.cursor;
      const removed = await opts.writer.sweep(gone, (trx, n) => store.advanceSweep(trx, mapper.name, { cursor: next, removed: n, finished: last }));
      outcome.removed += removed;
      sweep.cursor = next;
      if (last) {
        outcome.finished = true;
        break;
      }
    }
    if (outcome.finished) {
      rowsTotal = rowsDone;
      gauges?.snapshotRowsTotal.set({ mapping: mapper.name }, rowsTotal);
      opts.progress?.done(report());
    }
    outcome.seconds = (Date.now() - started) / 1000;
    log.info(
      { mapping: mapper.name, finished: outcome.finished, rows: outcome.rows, chunks: outcome.chunks, enqueued: outcome.enqueued, removed: outcome.removed, deadLettered: outcome.deadLettered, seconds: outcome.seconds },
      `${mode.kind === 'resync' ? 'resync' : what} of ${mapper.name} ${outcome.finished ? 'finished' : 'stopped'}: ${outcome.chunks} chunk(s), ${outcome.rows} row(s) read, ${outcome.enqueued} queued${outcome.reconciled ? `, ${outcome.removed} removal(s) of rows gone` : ''}`,
    );
    return outcome;
  } finally {
    if (lock) {
      // Destroyed, not returned to the pool: a session lock must not outlive the run on an idle connection.
      lock.release(true);
    }
  }
}
