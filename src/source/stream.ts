import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { failpoint } from '../failpoints.js';
import type { Mapper, Row } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { compareLsn, lsnToBigInt, normalizeLsn, ZERO_LSN, type Lsn } from './lsn.js';
import { RelationTracker } from './relations.js';
import type { SourceBaseline } from './setup.js';
import type { ChangeSink, RowChange } from './types.js';
import './pg-types.js';

export interface StreamOptions {
  url: string;
  slot: string;
  publication: string;
  applicationName: string;
  mappers: readonly Mapper[];
  baseline: SourceBaseline;
  sink: ChangeSink;
  log: Logger;
  metrics?: Metrics;
  /** Changes buffered before a write, even inside a transaction (bounds memory for huge transactions). */
  flushChanges: number;
  /** Longest a committed change waits in memory before its write. */
  flushIntervalMs: number;
  /** Reconnect backoff: min(maxBackoffMs, baseBackoffMs·2^attempt), with jitter. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Reads the slot and hands changes to the sink, acknowledging an LSN only once everything up to it is durable:
 *
 *   begin → changes (buffered; written early when a transaction is huge) → commit → … → write(changes,
 *   durableLsn = last commitEndLsn) → acknowledge(durableLsn)
 *
 * Acknowledgement is manual (`auto:false, timeoutSeconds:0`: the library's timer would otherwise acknowledge
 * what was merely received). Keepalives that ask for a reply get the last durable LSN. Flow control pauses
 * the socket while a write is slow. The library has no reconnect and skips to the next message when a
 * handler throws, so any failure here tears the connection down, drops what was not durable, and reconnects
 * with capped exponential backoff: the slot resends from its confirmed position.
 */
export class ReplicationStream {
  private service: LogicalReplicationService | null = null;
  private relations: RelationTracker;
  private buffer: RowChange[] = [];
  private tx: { commitLsn: Lsn; xid: number; skip: boolean } | null = null;
  private lastCommitEnd: Lsn = ZERO_LSN;
  private durable: Lsn = ZERO_LSN;
  private writes: Promise<void> = Promise.resolve();
  /** Scheduled writes that have not taken the buffer yet: the next of them carries whatever arrives meanwhile. */
  private waiting = 0;
  private writing = false;
  private timer: NodeJS.Timeout | null = null;
  private failure: ((e: Error) => void) | null = null;
  private stopping = false;
  /** Set by stop(): received messages are ignored while the last write drains. */
  private closing = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private streaming = false;
  private connectedAt = 0;

  constructor(private readonly opts: StreamOptions) {
    this.relations = new RelationTracker(opts.mappers, opts.baseline, opts.log, (mapping) => opts.metrics?.mappingErrors.set({ mapping }, 1));
  }

  /** True while connected and streaming. */
  get isStreaming(): boolean {
    return this.streaming;
  }

  get durableLsn(): Lsn {
    return this.durable;
  }

  get stoppedMappings(): ReadonlyMap<string, string> {
    return this.relations.stopped;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.closing = false;
    this.loop = this.run();
  }

  /** Stops reading, makes what was received and committed durable, acknowledges it, and closes. Idempotent. */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.stopping = true;
    this.wake?.();
    const service = this.service;
    if (service && this.failure !== null) {
      // From here on messages are dropped (the slot resends them), so no write can be queued behind the last
      // one: a write that committed after the service stopped could no longer be acknowledged, leaving the
      // slot behind what is durable.
      this.closing = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      await this.scheduleWrite(true).catch(() => undefined);
    }
    await service?.stop().catch(() => undefined);
    this.failure?.(new Error('stopping'));
    await this.loop;
    this.loop = null;
    await this.catchUpSlot().catch((e: unknown) => this.opts.log.warn({ err: e, slot: this.opts.slot }, 'could not move the slot to the durable LSN; it resends from its position'));
  }

  /**
   * After the stream closed, moves the slot up to what is durable here if it is behind: pg destroys the
   * socket of a connection whose query (START_REPLICATION) still runs, and unread WAL in the receive buffer
   * makes the kernel reset the connection, so the last acknowledgement can be lost; a stop while
   * reconnecting, or a connection that failed after its last write, leaves the same gap. Everything up to
   * the durable LSN is in the outbox, so advancing the slot there is what acknowledging it would have done.
   * Waits (≤ 5 s) for this process's walsender to let the slot go; never touches a slot another one uses.
   */
  private async catchUpSlot(): Promise<void> {
    const durable = normalizeLsn(await this.opts.sink.durableLsn());
    if (durable === ZERO_LSN) return;
    const client = new pg.Client({ connectionString: this.opts.url, application_name: this.opts.applicationName });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const { rows } = await client.query<{ active: boolean; behind: boolean; confirmed: string | null }>(
          'SELECT active, confirmed_flush_lsn < $2::pg_lsn AS behind, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1',
          [this.opts.slot, durable],
        );
        const slot = rows[0];
        if (!slot?.behind) return;
        if (!slot.active) {
          await client.query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [this.opts.slot, durable]);
          this.opts.log.info({ slot: this.opts.slot, from: slot.confirmed, to: durable }, 'slot advanced to the durable LSN after the stream closed');
          return;
        }
        if (Date.now() > deadline) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      try {
        await this.streamOnce();
      } catch (e) {
        if (!this.stopping) this.opts.log.warn({ err: e, slot: this.opts.slot }, 'replication stream failed');
      }
      this.streaming = false;
      if (this.stopping) break;
      if (Date.now() - this.connectedAt > 30_000) attempt = 0;
      const base = this.opts.baseBackoffMs ?? 1000;
      const delay = Math.min(this.opts.maxBackoffMs ?? 30_000, base * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt++;
      this.opts.metrics?.reconnects.inc();
      this.opts.log.info({ slot: this.opts.slot, attempt, delayMs: Math.round(delay) }, 'reconnecting to the replication slot');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, delay).unref();
      });
      this.wake = null;
    }
  }

  private async streamOnce(): Promise<void> {
    this.durable = normalizeLsn(await this.opts.sink.durableLsn());
    this.lastCommitEnd = this.durable;
    this.buffer = [];
    this.tx = null;
    const service = new LogicalReplicationService(
      { connectionString: this.opts.url, application_name: this.opts.applicationName },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.service = service;
    const failed = new Promise<never>((_, reject) => {
      this.failure = reject;
    });
    service.on('error', (e: Error) => this.fail(e));
    service.on('data', (_lsn: string, msg: Pgoutput.Message) => this.onMessage(msg));
    service.on('heartbeat', (_lsn: string, _ts: number, shouldRespond: boolean) => {
      if (shouldRespond) void service.acknowledge(this.durable).catch(() => undefined);
    });
    service.on('start', () => {
      this.streaming = true;
      this.connectedAt = Date.now();
      // What an earlier connection made durable but could not acknowledge (it failed after the write).
      if (this.durable !== ZERO_LSN) void service.acknowledge(this.durable).catch(() => undefined);
      this.opts.log.info({ slot: this.opts.slot, lsn: this.durable }, 'streaming from the replication slot');
    });
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [this.opts.publication], messages: true });
    try {
      // '0/00000000': resume from the slot's confirmed position, never from what this process last received.
      const ended = service.subscribe(plugin, this.opts.slot, '0/00000000').then(() => {
        if (!this.stopping) throw new Error('replication stream ended');
      });
      await Promise.race([ended, failed]);
    } finally {
      this.failure = null;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      await service.destroy().catch(() => undefined);
      await this.writes.catch(() => undefined);
      this.writes = Promise.resolve();
      this.waiting = 0;
      this.service = null;
      this.buffer = [];
    }
  }

  /**
   * Tears the connection down. `failure` is cleared first, synchronously: a write already queued behind the
   * one that failed must not run, or it would record as durable (and acknowledge) an LSN past the changes
   * the failed write dropped. Messages still queued in the library are ignored; the slot resends them all.
   */
  private fail(e: unknown): void {
    const failure = this.failure;
    this.failure = null;
    failure?.(e instanceof Error ? e : new Error(String(e)));
  }

  private async onMessage(msg: Pgoutput.Message): Promise<void> {
    if (this.failure === null || this.closing) return; // torn down or closing: the slot will resend
    switch (msg.tag) {
      case 'begin': {
        const commitLsn = normalizeLsn(msg.commitLsn ?? ZERO_LSN);
        // Replayed after a crash between our commit and the acknowledgement: already durable.
        this.tx = { commitLsn, xid: msg.xid, skip: compareLsn(commitLsn, this.durable) < 0 };
        return;
      }
      case 'relation':
        this.relations.onRelation(msg, this.tx?.commitLsn);
        return;
      case 'insert':
      case 'update':
      case 'delete':
        this.onRowChange(msg);
        if (this.buffer.length >= this.opts.flushChanges) await this.flushFull();
        return;
      case 'truncate':
        if (!this.tx || this.tx.skip) return;
        for (const rel of msg.relations) {
          const m = this.relations.mapperFor(rel);
          if (m) this.buffer.push({ kind: 'truncate', mapping: m.name, lsn: this.tx.commitLsn, xid: this.tx.xid });
        }
        return;
      case 'commit': {
        const end = normalizeLsn(msg.commitEndLsn ?? ZERO_LSN);
        if (compareLsn(end, this.lastCommitEnd) > 0) this.lastCommitEnd = end;
        this.tx = null;
        this.opts.metrics?.transactions.inc();
        if (this.buffer.length >= this.opts.flushChanges) await this.flushFull();
        else this.flushSoon();
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

  private onRowChange(msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete): void {
    const tx = this.tx;
    if (!tx || tx.skip) return;
    const mapper = this.relations.mapperFor(msg.relation);
    if (!mapper) return;
    const { commitLsn: lsn, xid } = tx;
    this.opts.metrics?.changes.inc({ mapping: mapper.name, kind: msg.tag });
    if (msg.tag === 'delete') {
      const oldRow = (msg.key ?? msg.old) as Row | null;
      const key = oldRow ? mapper.keyOf(oldRow) : null;
      if (key !== null) this.buffer.push({ kind: 'delete', mapping: mapper.name, key, lsn, xid });
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
        this.buffer.push({ kind: 'delete', mapping: mapper.name, key: oldKey, lsn, xid });
        this.buffer.push({ kind: 'insert', mapping: mapper.name, key, row, lsn, xid });
        return;
      }
    }
    this.buffer.push({ kind: msg.tag, mapping: mapper.name, key, row, lsn, xid });
  }

  /**
   * A full buffer goes to a write, and decoding continues into a fresh buffer while that write runs: the
   * slot's next changes are read and mapped while Postgres makes the previous ones durable. Never more than
   * one write behind, though: the previous write must finish first. Waiting for it here keeps the socket
   * paused (the backpressure) and bounds memory to two buffers. Acknowledgement is unchanged: each write
   * acknowledges, after it commits, only the transactions whose every change it or an earlier write holds.
   */
  private async flushFull(): Promise<void> {
    await this.writes;
    void this.scheduleWrite(false);
  }

  /**
   * A transaction committed: write it at once when no write is running (a change should not sit in memory
   * while Postgres is idle), else right after the running write (group commit: everything that arrived
   * meanwhile goes in one write, so batches grow with load), and never later than flushIntervalMs.
   */
  private flushSoon(): void {
    if (this.waiting > 0) return;
    if (!this.writing) void this.scheduleWrite(false);
    else if (!this.timer) this.timer = setTimeout(() => void this.scheduleWrite(false), this.opts.flushIntervalMs);
  }

  /**
   * Queues one write of everything buffered; writes run one at a time, in order. `wait` makes the caller (the
   * message handler, so the socket) wait for it: that is the backpressure.
   */
  private scheduleWrite(wait: boolean): Promise<void> {
    this.waiting++;
    const next = this.writes.then(() => this.writeNow());
    this.writes = next.catch((e: unknown) => this.fail(e));
    return wait ? next : Promise.resolve();
  }

  private async writeNow(): Promise<void> {
    this.waiting--;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const service = this.service;
    if (!service || this.failure === null) return;
    const changes = this.buffer;
    this.buffer = [];
    // Every change of every transaction committed so far is in `changes` or already written.
    const ack = compareLsn(this.lastCommitEnd, this.durable) > 0 ? this.lastCommitEnd : null;
    if (changes.length === 0 && ack === null) return;
    const started = process.hrtime.bigint();
    this.writing = true;
    try {
      await this.opts.sink.write(changes, ack);
    } finally {
      this.writing = false;
    }
    this.opts.metrics?.outboxFlushes.inc();
    this.opts.metrics?.outboxFlushSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (ack) {
      failpoint('outbox.after-commit');
      this.durable = ack;
      this.opts.metrics?.durableLsn.set(Number(lsnToBigInt(ack)));
      await service.acknowledge(ack);
    }
    // Transactions that committed while this write ran go next (see flushSoon).
    if (this.waiting === 0 && compareLsn(this.lastCommitEnd, this.durable) > 0) void this.scheduleWrite(false);
  }
}
