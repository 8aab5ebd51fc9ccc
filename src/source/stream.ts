import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { backoffDelay } from '../lib/backoff.js';
import { errorText } from '../lib/loop.js';
import { Waiter } from '../lib/sleep.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { CommitBatcher } from './batcher.js';
import { normalizeLsn, ZERO_LSN, type Lsn } from './lsn.js';
import { RelationTracker, type DescribeTypes, type StopNotice } from './relations.js';
import type { SourceBaseline } from './setup.js';
import type { ChangeSink } from './types.js';
import './pg-types.js';

export interface StreamOptions {
  url: string;
  slot: string;
  publication: string;
  applicationName: string;
  mappers: readonly Mapper[];
  baseline: SourceBaseline;
  sink: ChangeSink;
  /** A logger that already names the slot. */
  log: Logger;
  metrics?: Metrics;
  /** Changes buffered before a write, even inside a transaction (bounds memory for huge transactions). */
  flushChanges: number;
  /** Longest a committed change waits in memory before its write. */
  flushIntervalMs: number;
  /** Reconnect backoff: min(maxBackoffMs, baseBackoffMs·2^attempt), with jitter. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** A mapping stopped on a schema change (the caller remembers it). */
  onStop?: (notice: StopNotice) => void;
  /** Describes type oids for the type-change rules (a query on pg_type). */
  describeTypes?: DescribeTypes;
  /**
   * Told of each failed connection before the backoff; it may repair what it recognises (a dropped slot, a
   * dropped publication) and returns a line for the log: the named error and its remedy.
   */
  onFailure?: (e: unknown) => Promise<{ code: string; message: string } | null>;
}

/**
 * The stream's life:
 *   idle → connecting → streaming → (failed connection) → waiting (backoff) → connecting → …
 *   any → stopping → stopped
 * `stop()` is the only way out of the loop; everything else reconnects.
 */
export type StreamState = 'idle' | 'connecting' | 'streaming' | 'waiting' | 'stopping' | 'stopped';

/**
 * Reads the slot and hands changes to the sink through a CommitBatcher per connection (src/source/batcher.ts:
 * what is acknowledged, when). Acknowledgement is manual (`auto:false, timeoutSeconds:0`: the library's timer
 * would otherwise acknowledge what was merely received). Keepalives that ask for a reply get the last durable
 * LSN. Flow control pauses the socket while a write is slow. The library has no reconnect and skips to the
 * next message when a handler throws, so any failure here tears the connection down, drops what was not
 * durable, and reconnects with capped exponential backoff: the slot resends from its confirmed position.
 */
export class ReplicationStream {
  readonly #relations: RelationTracker;
  readonly #waiter = new Waiter();
  #state: StreamState = 'idle';
  #loop: Promise<void> | null = null;
  /** The current connection: its service, its batcher, and how to end its wait. */
  #session: { service: LogicalReplicationService; batcher: CommitBatcher; end: (e: Error) => void } | null = null;
  #durable: Lsn = ZERO_LSN;
  #connectedAt = 0;

  constructor(private readonly opts: StreamOptions) {
    this.#relations = new RelationTracker(
      opts.mappers,
      opts.baseline,
      opts.log,
      (notice) => {
        opts.metrics?.mappingErrors.set({ mapping: notice.mapping }, 1);
        opts.onStop?.(notice);
      },
      opts.describeTypes ?? null,
    );
  }

  get state(): StreamState {
    return this.#state;
  }

  /** True while connected and streaming. */
  get isStreaming(): boolean {
    return this.#state === 'streaming';
  }

  get durableLsn(): Lsn {
    return this.#session?.batcher.durable ?? this.#durable;
  }

  get stoppedMappings(): ReadonlyMap<string, string> {
    return this.#relations.stopped;
  }

  /** Stops a mapping from outside (its table was dropped): its changes are skipped from now on. */
  stopMapping(mapping: string, reason: string): void {
    this.#relations.stopMapping(mapping, reason);
  }

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
  }

  /** Stops reading, makes what was received and committed durable, acknowledges it, and closes. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#loop) return;
    this.#state = 'stopping';
    this.#waiter.wake();
    const session = this.#session;
    if (session) {
      // From here on messages are dropped (the slot resends them), so no write can be queued behind the last
      // one: a write that committed after the service stopped could no longer be acknowledged.
      await session.batcher.close();
      await session.service.stop().catch(() => undefined);
      session.end(new Error('stopping'));
    }
    await this.#loop;
    this.#loop = null;
    this.#state = 'stopped';
    await this.#catchUpSlot().catch((e: unknown) => this.opts.log.warn({ error: errorText(e) }, 'could not move the slot to the durable LSN; it resends from its position'));
  }

  async #run(): Promise<void> {
    let attempt = 0;
    const policy = { baseMs: this.opts.baseBackoffMs ?? 1_000, maxMs: this.opts.maxBackoffMs ?? 30_000, jitter: 'equal' as const };
    while (!this.#stopping()) {
      this.#enter('connecting');
      this.#connectedAt = 0;
      let failure: unknown = null;
      try {
        await this.#streamOnce();
      } catch (e) {
        failure = e;
      }
      if (this.#stopping()) break;
      // A connection that streamed a while was healthy: the next failure starts the backoff over. One that
      // never got to stream (a slot that cannot be read) keeps growing it.
      if (this.#connectedAt !== 0 && Date.now() - this.#connectedAt > 30_000) attempt = 0;
      const delay = backoffDelay(policy, attempt++);
      const named = failure === null ? null : await this.opts.onFailure?.(failure).catch((e: unknown) => ({ code: 'SOURCE_RECOVERY_FAILED', message: errorText(e) }));
      if (failure !== null) {
        if (named) this.opts.log.error({ code: named.code, error: errorText(failure), retryInMs: delay }, named.message);
        else this.opts.log.warn({ error: errorText(failure), code: (failure as { code?: string }).code, retryInMs: delay }, 'replication stream failed; reconnecting');
      }
      this.#enter('waiting');
      this.opts.metrics?.reconnects.inc();
      this.opts.log.debug({ attempt, delayMs: delay }, 'reconnecting to the replication slot');
      await this.#waiter.wait(delay);
    }
  }

  /** Read through a method: stop() changes the state while the loop awaits. */
  #stopping(): boolean {
    return this.#state === 'stopping';
  }

  /** The loop's transitions; none leads out of stopping (stop() may have come while the loop awaited). */
  #enter(next: 'connecting' | 'streaming' | 'waiting'): void {
    if (this.#state !== 'stopping' && this.#state !== 'stopped') this.#state = next;
  }

  async #streamOnce(): Promise<void> {
    this.#durable = normalizeLsn(await this.opts.sink.durableLsn());
    // stop() may have come while that query ran: it found no session to close, so none must start now.
    if (this.#stopping()) return;
    const service = new LogicalReplicationService(
      { connectionString: this.opts.url, application_name: this.opts.applicationName },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    let end: (e: Error) => void = () => undefined;
    const ended = new Promise<never>((_, reject) => (end = reject));
    const batcher = new CommitBatcher(
      {
        sink: this.opts.sink,
        relations: this.#relations,
        metrics: this.opts.metrics,
        flushChanges: this.opts.flushChanges,
        flushIntervalMs: this.opts.flushIntervalMs,
        acknowledge: (lsn) => service.acknowledge(lsn),
        onFailure: (e) => end(e),
      },
      this.#durable,
    );
    this.#session = { service, batcher, end };
    service.on('error', (e: Error) => {
      batcher.fail();
      end(e);
    });
    service.on('data', (_lsn: string, msg: Pgoutput.Message) => batcher.onMessage(msg));
    service.on('heartbeat', (_lsn: string, _ts: number, shouldRespond: boolean) => {
      if (shouldRespond) void service.acknowledge(batcher.durable).catch(() => undefined);
    });
    service.on('start', () => {
      this.#enter('streaming');
      this.#connectedAt = Date.now();
      // What an earlier connection made durable but could not acknowledge (it failed after the write).
      if (batcher.durable !== ZERO_LSN) void service.acknowledge(batcher.durable).catch(() => undefined);
      this.opts.log.info({ lsn: batcher.durable }, 'streaming from the replication slot');
    });
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [this.opts.publication], messages: true });
    try {
      // '0/00000000': resume from the slot's confirmed position, never from what this process last received.
      const done = service.subscribe(plugin, this.opts.slot, '0/00000000').then(() => {
        if (!this.#stopping()) throw new Error('replication stream ended');
      });
      await Promise.race([done, ended]);
    } finally {
      // A connection that failed drops everything not durable: the slot resends it.
      if (batcher.state === 'open') batcher.fail();
      await service.destroy().catch(() => undefined);
      await batcher.settle();
      this.#durable = batcher.durable;
      this.#session = null;
    }
  }

  /**
   * After the stream closed, moves the slot up to what is durable here if it is behind: pg destroys the
   * socket of a connection whose query (START_REPLICATION) still runs, and unread WAL in the receive buffer
   * makes the kernel reset the connection, so the last acknowledgement can be lost; a stop while
   * reconnecting, or a connection that failed after its last write, leaves the same gap. Everything up to
   * the durable LSN is in the outbox, so advancing the slot there is what acknowledging it would have done.
   * Waits (≤ 5 s) for this process's walsender to let the slot go; never touches a slot another one uses.
   */
  async #catchUpSlot(): Promise<void> {
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
          this.opts.log.info({ from: slot.confirmed, to: durable }, 'slot advanced to the durable LSN after the stream closed');
          return;
        }
        if (Date.now() > deadline) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
