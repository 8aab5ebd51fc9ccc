import { sql } from 'kysely';
import type { Mapper } from '../mapping/mapper.js';
import type { SnapshotChunk, SourceTable } from '../snapshot/types.js';
import { takeWriterTurn } from '../store/capture.js';
import type { StoreContext } from '../store/context.js';
import { upsertDeadLetters, type DeadLetterRecord } from '../store/dead-letters.js';
import { applyChunk, forceResend, keysWithoutState, sweepChunk, type ChunkRecord } from '../store/snapshot.js';
import { presentKeys } from '../snapshot/reader.js';
import type { SweepChunk } from '../snapshot/reader.js';
import { transaction, type Fence, type Trx } from '../store/tx.js';
import { desiredOf } from './desired.js';
import type { GuardEvent, RemovalGuard } from './removal-guard.js';

export interface SnapshotWriteOptions {
  source: SourceTable;
  /**
   * Resync: make delivery send each contact of the chunk again even when its payload is what Wooxy was
   * last told (see `force` below).
   */
  force?: boolean;
  /** Runs inside the chunk's transaction, after its rows (the runner persists its cursor here). */
  inTransaction?: (trx: Trx) => Promise<void>;
}

export interface SnapshotWriteOutcome {
  /** Rows applied to the contact state (the others were older than what the stream had written). */
  applied: number;
  /** Rows older than a version the stream had already applied, or gone from the source: left alone. */
  skipped: number;
  /** Contacts given a pending outbox entry (with `force`: the chunk's contacts that have one now). */
  enqueued: number;
  deadLettered: number;
  /** The rows the vendor's rules rejected (ROW_INVALID). */
  invalid: DeadLetterRecord[];
}

/** Prefix of the logical message each chunk writes (see `write`). */
export const WATERMARK_MESSAGE_PREFIX = 'wooxy-cdc.snapshot';

/**
 * Applies snapshot chunks to the per-contact state and the coalescing outbox — the same tables, projection
 * and no-op rule as the stream's OutboxWriter — but only where the row read is at least as new as the
 * version already stored (the ordering argument is in src/snapshot/runner.ts). One transaction per chunk,
 * set-based: one statement for every row, whatever the chunk size.
 */
export class SnapshotWriter {
  /**
   * `fence`: the leader's term when its pipeline runs the snapshot; null for the `snapshot` and `resync`
   * commands. `guard`: judges the removals a chunk queues (rows that no longer match a changed filter), in
   * the chunk's transaction.
   */
  constructor(
    private readonly ctx: StoreContext,
    private readonly mappers: ReadonlyMap<string, Mapper>,
    private readonly fence: Fence | null = null,
    private readonly guard: RemovalGuard | null = null,
  ) {}

  async write(chunk: SnapshotChunk, options: SnapshotWriteOptions): Promise<SnapshotWriteOutcome> {
    const mapper = this.mappers.get(chunk.mapping);
    if (!mapper) throw new Error(`unknown mapping ${chunk.mapping}`);
    const invalid = new Map<string, DeadLetterRecord>();
    const records: ChunkRecord[] = [];
    for (const row of chunk.rows) {
      const key = mapper.keyOf(row);
      if (key === null) continue;
      const d = desiredOf(mapper, row);
      if (d.ok) records.push({ k: key, r: row, d: d.desired, kd: false });
      else {
        // Like the stream: an invalid row is dead-lettered and the contact keeps its last valid desired state.
        records.push({ k: key, r: row, d: null, kd: true });
        invalid.set(key, { mapping: chunk.mapping, key, op: 'add', payload: row, code: 'ROW_INVALID', message: d.message });
      }
    }
    const removals = records.filter((r) => r.d === null && !r.kd).map((r) => r.k);
    const { outcome, holds } = await transaction(this.ctx, this.fence, async (trx) => {
      await takeWriterTurn(this.ctx, trx);
      const outcome: SnapshotWriteOutcome = { applied: 0, skipped: 0, enqueued: 0, deadLettered: 0, invalid: [] };
      let holds: GuardEvent[] = [];
      if (records.length > 0) {
        // The keys without state are looked up at the source now, after the turn (see applyChunk): in this
        // transaction when the source is this database, else on the source's own pool.
        const unknown = await keysWithoutState(this.ctx, trx, chunk.mapping, records.map((r) => r.k));
        const present = await presentKeys(this.ctx.separate ? this.ctx.source : trx, options.source, unknown);
        const applied = await applyChunk(this.ctx, trx, chunk, records, present);
        outcome.applied = applied.applied;
        outcome.skipped = records.length - applied.applied;
        outcome.enqueued = applied.queued;
        if (options.force) outcome.enqueued = await forceResend(this.ctx, trx, chunk.mapping, chunk.watermark, records.map((r) => r.k));
        // After the outbox, before the dead letters: the lock order.
        if (this.guard && removals.length > 0) holds = await this.guard.judgeWrite(trx, new Map([[chunk.mapping, { keys: removals, truncated: false }]]));
        const dead = applied.invalid.map((k) => invalid.get(k)!).filter(Boolean);
        await upsertDeadLetters(this.ctx, trx, dead);
        outcome.deadLettered = dead.length;
        outcome.invalid = dead;
      }
      await options.inTransaction?.(trx);
      // Delivery sends an entry only once the stream's durable LSN has passed the entry's LSN (here: the
      // watermark). The stream records progress only at commits of transactions it decodes, and Postgres
      // skips transactions that touch no published table; this message gives it one past the watermark
      // even when the mapped tables are idle.
      await this.watermark(trx, chunk);
      return { outcome, holds };
    }, { attempts: 5 });
    this.guard?.report(holds);
    return outcome;
  }

  /**
   * The chunk's logical message, written at the source: in the chunk's own transaction when the state lives
   * there, else on the source's pool before this transaction commits. Either way its commit comes after the
   * read, and the stream's durable LSN cannot pass it before the chunk is durable: recording that LSN takes
   * the writers' turn this transaction holds.
   */
  private async watermark(trx: Trx, chunk: { mapping: string; watermark: string }): Promise<void> {
    await sql`SELECT pg_logical_emit_message(true, ${WATERMARK_MESSAGE_PREFIX}, ${JSON.stringify({ mapping: chunk.mapping, watermark: chunk.watermark })})`.execute(
      this.ctx.separate ? this.ctx.source : trx,
    );
  }

  /**
   * A reconciliation's sweep chunk: the contacts whose rows the read found gone become removals, where the
   * state is not newer than the read. Same transaction rules as write(): the writers' turn, the watermark
   * message (delivery sends these removals once the stream has passed the read), and `inTransaction` (the
   * runner's progress) with the count of removals queued.
   */
  async sweep(chunk: SweepChunk, inTransaction: (trx: Trx, removals: number) => Promise<void>): Promise<number> {
    const { removals, holds } = await transaction(this.ctx, this.fence, async (trx) => {
      await takeWriterTurn(this.ctx, trx);
      const removals = await sweepChunk(this.ctx, trx, chunk);
      // A gap the stream did not see (a lost slot) can hide a TRUNCATE: the sweep's removals are judged too.
      const holds = this.guard && removals > 0 ? await this.guard.judgeWrite(trx, new Map([[chunk.mapping, { keys: chunk.keys, truncated: false, swept: true }]])) : [];
      await inTransaction(trx, removals);
      await this.watermark(trx, chunk);
      return { removals, holds };
    });
    this.guard?.report(holds);
    return removals;
  }
}
