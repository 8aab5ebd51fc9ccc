import type { Pgoutput } from 'pg-logical-replication';
import { failpoint } from '../failpoints.js';
import type { Mapper, Row } from '../mapping/mapper.js';
import type { Metrics } from '../observability/metrics.js';
import { compareLsn, lsnToBigInt, normalizeLsn, ZERO_LSN, type Lsn } from './lsn.js';
import type { RelationTracker } from './relations.js';
import type { ChangeSink, RowChange } from './types.js';

/**
 * One replication connection's life, as the batcher sees it:
 *   open     messages are decoded, buffered, written and acknowledged;
 *   closing  stop() asked for a last write of what is committed: new messages are dropped (the slot resends
 *            them), so no write can queue behind the last one;
 *   failed   a write failed or the connection broke: everything not durable is dropped, and every write still
 *            queued is skipped (it would record as durable an LSN past the changes the failed write lost).
 */
export type BatcherState = 'open' | 'closing' | 'failed';

export interface BatcherOptions {
  sink: ChangeSink;
  relations: RelationTracker;
  metrics?: Metrics;
  /** Changes buffered before a write, even inside a transaction (bounds memory for huge transactions). */
  flushChanges: number;
  /** Longest a committed change waits in memory before its write. */
  flushIntervalMs: number;
  /** Acknowledges an LSN to the slot (the connection's standby status update). */
  acknowledge: (lsn: Lsn) => Promise<unknown>;
  /** Called once, with the error, when a write fails: the stream tears the connection down. */
  onFailure: (e: Error) => void;
}

/**
 * Turns one connection's pgoutput messages into outbox writes, acknowledging an LSN only once everything up
 * to it is durable:
 *
 *   begin → changes (buffered; written early when a transaction is huge) → commit → … → write(changes,
 *   durableLsn = last commitEndLsn) → acknowledge(durableLsn)
 *
 * A commit that finds no write running is written at once; commits arriving during a write go together into
 * the next one (group commit), and the next buffer is decoded while the previous one is written.
 */
export class CommitBatcher {
  #state: BatcherState = 'open';
  #buffer: RowChange[] = [];
  #tx: { commitLsn: Lsn; xid: number; skip: boolean } | null = null;
  #lastCommitEnd: Lsn;
  #durable: Lsn;
  /** The chain of writes: one at a time, in order. */
  #writes: Promise<void> = Promise.resolve();
  /** Scheduled writes that have not taken the buffer yet: the next of them carries whatever arrives meanwhile. */
  #queued = 0;
  #writing = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: BatcherOptions,
    durable: Lsn,
  ) {
    this.#durable = durable;
    this.#lastCommitEnd = durable;
  }

  get state(): BatcherState {
    return this.#state;
  }

  /** The last LSN durable in the outbox (and acknowledged, or about to be). */
  get durable(): Lsn {
    return this.#durable;
  }

  /** Stops accepting anything: queued writes are skipped, the buffer dropped. Idempotent. */
  fail(): void {
    this.#state = 'failed';
    this.#clearTimer();
    this.#buffer = [];
  }

  /**
   * Writes what is committed and acknowledges it, dropping whatever arrives from now on. Resolves when that
   * last write has ended (its failure is reported through onFailure, not thrown).
   */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    this.#clearTimer();
    await this.#schedule(true).catch(() => undefined);
  }

  /** Waits for the writes in progress to end (after a failure, so nothing runs behind the connection's back). */
  async settle(): Promise<void> {
    this.#clearTimer();
    await this.#writes.catch(() => undefined);
  }

  async onMessage(msg: Pgoutput.Message): Promise<void> {
    if (this.#state !== 'open') return; // the slot will resend it
    switch (msg.tag) {
      case 'begin': {
        const commitLsn = normalizeLsn(msg.commitLsn ?? ZERO_LSN);
        // Replayed after a crash between our commit and the acknowledgement: already durable.
        this.#tx = { commitLsn, xid: msg.xid, skip: compareLsn(commitLsn, this.#durable) < 0 };
        return;
      }
      case 'relation':
        await this.opts.relations.onRelation(msg, this.#tx?.commitLsn);
        return;
      case 'insert':
      case 'update':
      case 'delete':
        this.#onRowChange(msg);
        if (this.#buffer.length >= this.opts.flushChanges) await this.#flushFull();
        return;
      case 'truncate':
        if (!this.#tx || this.#tx.skip) return;
        for (const rel of msg.relations) {
          const m = this.opts.relations.mapperFor(rel);
          if (m) this.#buffer.push({ kind: 'truncate', mapping: m.name, lsn: this.#tx.commitLsn, xid: this.#tx.xid });
        }
        return;
      case 'commit': {
        const end = normalizeLsn(msg.commitEndLsn ?? ZERO_LSN);
        if (compareLsn(end, this.#lastCommitEnd) > 0) this.#lastCommitEnd = end;
        this.#tx = null;
        this.opts.metrics?.transactions.inc();
        if (this.#buffer.length >= this.opts.flushChanges) await this.#flushFull();
        else this.#flushSoon();
        return;
      }
      case 'message':
      case 'origin':
      case 'type':
        return;
      default: {
        const never: never = msg;
        throw new Error(`unknown pgoutput message ${JSON.stringify(never)}`);
      }
    }
  }

  #onRowChange(msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete): void {
    const tx = this.#tx;
    if (!tx || tx.skip) return;
    const mapper: Mapper | undefined = this.opts.relations.mapperFor(msg.relation);
    if (!mapper) return;
    const { commitLsn: lsn, xid } = tx;
    this.opts.metrics?.changes.inc({ mapping: mapper.name, kind: msg.tag });
    if (msg.tag === 'delete') {
      const oldRow = (msg.key ?? msg.old) as Row | null;
      const key = oldRow ? mapper.keyOf(oldRow) : null;
      if (key !== null) this.#buffer.push({ kind: 'delete', mapping: mapper.name, key, lsn, xid });
      return;
    }
    const row: Row = {};
    for (const c of mapper.columns) row[c] = (msg.new as Row)[c];
    const key = mapper.keyOf(row);
    if (key === null) return;
    if (msg.tag === 'update') {
      // A key change arrives as an update carrying the old key: it is a delete of the old contact.
      const oldRow = (msg.key ?? msg.old) as Row | null;
      const oldKey = oldRow ? mapper.keyOf(oldRow) : null;
      if (oldKey !== null && oldKey !== key) {
        this.#buffer.push({ kind: 'delete', mapping: mapper.name, key: oldKey, lsn, xid });
        this.#buffer.push({ kind: 'insert', mapping: mapper.name, key, row, lsn, xid });
        return;
      }
    }
    this.#buffer.push({ kind: msg.tag, mapping: mapper.name, key, row, lsn, xid });
  }

  /**
   * A full buffer goes to a write, and decoding continues into a fresh buffer while that write runs. Never
   * more than one write behind, though: the previous write must finish first. Waiting for it here keeps the
   * socket paused (the backpressure) and bounds memory to two buffers.
   */
  async #flushFull(): Promise<void> {
    await this.#writes;
    void this.#schedule(false);
  }

  /** A transaction committed: write it at once when no write runs, else right after it, never later than flushIntervalMs. */
  #flushSoon(): void {
    if (this.#queued > 0) return;
    if (!this.#writing) void this.#schedule(false);
    else this.#timer ??= setTimeout(() => void this.#schedule(false), this.opts.flushIntervalMs);
  }

  /** Queues one write of everything buffered. `wait` makes the caller wait for it (the backpressure). */
  #schedule(wait: boolean): Promise<void> {
    this.#queued++;
    const next = this.#writes.then(() => this.#write());
    this.#writes = next.catch((e: unknown) => {
      if (this.#state === 'failed') return;
      this.fail();
      this.opts.onFailure(e instanceof Error ? e : new Error(String(e)));
    });
    return wait ? next : Promise.resolve();
  }

  async #write(): Promise<void> {
    this.#queued--;
    this.#clearTimer();
    if (this.#state === 'failed') return;
    const changes = this.#buffer;
    this.#buffer = [];
    // Every change of every transaction committed so far is in `changes` or already written.
    const ack = compareLsn(this.#lastCommitEnd, this.#durable) > 0 ? this.#lastCommitEnd : null;
    if (changes.length === 0 && ack === null) return;
    const started = process.hrtime.bigint();
    this.#writing = true;
    try {
      await this.opts.sink.write(changes, ack);
    } finally {
      this.#writing = false;
    }
    this.opts.metrics?.outboxFlushes.inc();
    this.opts.metrics?.outboxFlushSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (ack) {
      failpoint('outbox.after-commit');
      this.#durable = ack;
      this.opts.metrics?.durableLsn.set(Number(lsnToBigInt(ack)));
      await this.opts.acknowledge(ack);
    }
    // Transactions that committed while this write ran go next (see flushSoon).
    if (this.#state === 'open' && this.#queued === 0 && compareLsn(this.#lastCommitEnd, this.#durable) > 0) void this.#schedule(false);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
