import type { Config } from './config/schema.js';
import type { DbHandle } from './db/index.js';
import { Sender } from './delivery/sender.js';
import type { Mapper, MappingDefinition } from './mapping/mapper.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import { SnapshotWriter } from './outbox/snapshot-writer.js';
import { RemovalGuard } from './outbox/removal-guard.js';
import { OutboxWriter, type WriteOutcome } from './outbox/writer.js';
import { SnapshotService } from './snapshot/service.js';
import { Poller } from './reconcile/poller.js';
import { Heartbeat } from './source/heartbeat.js';
import { SlotMonitor } from './source/monitor.js';
import { prepareSource, type KnownMapping } from './source/setup.js';
import { ReplicationStream } from './source/stream.js';
import type { ChangeSink } from './source/types.js';
import { SourceRecovery } from './lifecycle/recovery.js';
import { fingerprintOf } from './lifecycle/fingerprint.js';
import { reconcileAtStart } from './lifecycle/startup.js';
import { BackgroundLoop } from './lib/loop.js';
import { ActivitySummary, type DeadLetterLog } from './observability/activity.js';
import { readTypeDescriptions } from './source/type-descriptions.js';
import { storeContext } from './store/context.js';
import { hasHistory, loadMappingRecords } from './store/lifecycle.js';
import type { Fence } from './store/tx.js';
import type { WooxyClient } from './wooxy/client.js';

export interface PipelineOptions {
  config: Config;
  log: Logger;
  metrics: Metrics;
  handle: DbHandle;
  mappers: readonly Mapper[];
  client: WooxyClient;
  /** This term of leadership: every write of the pipeline is fenced with it. */
  fence: Fence;
  /** Calls in flight at once (the limiter's effective concurrency). */
  concurrency: number;
  webHookUri?: string;
  /** Capture only: no delivery or reconciliation. */
  captureOnly?: boolean;
  /** Asks the connector to build this term's pipeline again (a mapped table was created again). */
  onRestart?: (reason: string) => void;
  /** Where each dead letter is named (rate-limited, shared with the webhook receiver). */
  deadLetters: DeadLetterLog;
}

/** Resolves with true when `p` settles within `ms`, false otherwise (p keeps running). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The work only the leader does: replication stream → outbox, delivery, reconciliation, and beside them the
 * slot monitor and the heartbeat. One instance per term of leadership; a new term builds a new pipeline.
 */
export class Pipeline {
  private stream: ReplicationStream | null = null;
  private monitor: SlotMonitor | null = null;
  private heartbeat: Heartbeat | null = null;
  private guard: RemovalGuard | null = null;
  private sender: Sender | null = null;
  private poller: Poller | null = null;
  private snapshots: SnapshotService | null = null;
  private tables: BackgroundLoop | null = null;
  private summary: BackgroundLoop | null = null;
  private stopping: Promise<void> | null = null;

  constructor(private readonly opts: PipelineOptions) {}

  /** The background snapshots of this term (null when snapshot.onStart is false). */
  get snapshot(): SnapshotService | null {
    return this.snapshots;
  }

  get replication(): ReplicationStream | null {
    return this.stream;
  }

  get isStreaming(): boolean {
    return this.stream?.isStreaming ?? false;
  }

  /** Delivery looks for work now (after a webhook resolved a request, or an operator re-queued dead letters). */
  kick(): void {
    this.sender?.kick();
  }

  async start(): Promise<void> {
    const { config, log, metrics, handle, mappers, fence } = this.opts;
    const pg = config.postgres;
    const ctx = storeContext(handle, { history: config.history.keepDays > 0 });
    // A mapping that ran before and cannot run now for what it read before (a column dropped) has a broken
    // source: it stops and the others go on. A table or column that only a changed definition names, and that
    // does not exist, is the configuration's mistake: the start fails, naming it (exit 2). See KnownMapping.
    const records = await loadMappingRecords(ctx);
    const known = new Map<string, KnownMapping>();
    for (const m of mappers) {
      const rec = records.get(m.name);
      if (!rec) continue;
      const previous = rec.definition as Partial<MappingDefinition> | null;
      known.set(m.name, { same: rec.fingerprint === fingerprintOf(m.definition), table: previous?.table ?? null, columns: new Set(Object.keys(rec.columns ?? {})) });
    }
    const { durableLsn } = await hasHistory(ctx, pg.slot);
    const sourceSetup = { url: pg.url, slot: pg.slot, publication: pg.publication, autoCreate: pg.autoCreate, publishColumns: pg.publishColumns, mappers, log, known };
    const baseline = await prepareSource({ ...sourceSetup, durableLsn });
    if (this.stopping) return;
    // What this start owes to the past (a lost slot, a stop, a changed mapping) is decided before the stream runs.
    const lifecycleLog = log.child({ stage: 'lifecycle' });
    await reconcileAtStart({ ctx, fence, mappers, baseline, durableLsn, log: lifecycleLog, metrics });
    const byName = new Map(mappers.map((m) => [m.name, m]));
    this.guard = new RemovalGuard({ ctx, fence, mappings: config.mappings, log: log.child({ stage: 'guard' }), metrics, intervalMs: pg.monitorIntervalMs });
    const writer = new OutboxWriter(ctx, byName, pg.slot, fence, this.guard);
    // Delivery looks for work as soon as new entries are durable, not at its next idle tick.
    const sink: ChangeSink = {
      durableLsn: () => writer.durableLsn(),
      write: async (changes, durableLsn) => {
        const outcome = await writer.write(changes, durableLsn);
        this.reportWrite(outcome);
        if (durableLsn) this.sender?.kick();
        return outcome;
      },
    };
    const recovery = new SourceRecovery({
      ctx,
      fence,
      setup: sourceSetup,
      mappers,
      baseline,
      log: lifecycleLog,
      metrics,
      durableLsn: () => writer.durableLsn(),
      onReconcile: () => this.snapshots?.wake(),
      onStopped: (mapping, reason) => this.stream?.stopMapping(mapping, reason),
      onRestart: (reason) => this.opts.onRestart?.(reason),
      stopped: () => this.stream?.stoppedMappings ?? new Map<string, string>(),
    });
    this.stream = new ReplicationStream({
      url: pg.url,
      slot: pg.slot,
      publication: pg.publication,
      applicationName: pg.applicationName,
      mappers,
      baseline,
      sink,
      log: log.child({ stage: 'source', slot: pg.slot }),
      metrics,
      flushChanges: config.capture.flushChanges,
      flushIntervalMs: config.capture.flushIntervalMs,
      onStop: (notice) => recovery.mappingStopped(notice),
      describeTypes: (oids) => readTypeDescriptions(handle.source.pool, oids),
      onFailure: (e) => recovery.streamFailed(e),
    });
    this.stream.start();
    this.monitor = new SlotMonitor({ ctx, slot: pg.slot, metrics, log: log.child({ stage: 'monitor' }), intervalMs: pg.monitorIntervalMs, walWarnBytes: pg.walWarnBytes });
    this.monitor.start();
    this.tables = recovery.watchTables(pg.monitorIntervalMs);
    this.guard.start();
    this.heartbeat = new Heartbeat(handle.source.db, pg.heartbeatIntervalMs, log.child({ stage: 'heartbeat' }), metrics);
    this.heartbeat.start();
    const summary = new ActivitySummary(metrics, log);
    this.summary = new BackgroundLoop({ name: 'activity summary', log, intervalMs: 60_000, tick: () => summary.tick() });
    this.summary.start();
    // After prepareSource: the slot exists before the first chunk is read, so no change falls between them. It
    // always runs: reconciliations asked for (a gap, a stop, a changed mapping) run whatever snapshot.onStart says.
    const snapshotLog = log.child({ stage: 'snapshot' });
    this.snapshots = new SnapshotService({
      handle,
      mappers,
      writer: new SnapshotWriter(ctx, byName, fence, this.guard),
      chunkSize: config.snapshot.chunkSize,
      progressIntervalMs: config.snapshot.progressIntervalMs,
      log: snapshotLog,
      metrics,
      initial: config.snapshot.onStart,
      stopped: () => this.stream?.stoppedMappings ?? new Map<string, string>(),
      catchUp: { ctx, slot: pg.slot, log: snapshotLog, streamRuns: true },
    });
    this.snapshots.start();
    if (this.opts.captureOnly) return;

    const { delivery, reconcile, wooxy } = config;
    this.sender = new Sender({
      ctx,
      fence,
      client: this.opts.client,
      mappers: byName,
      log: log.child({ stage: 'delivery' }),
      metrics,
      batchSize: delivery.batchSize,
      concurrency: this.opts.concurrency,
      idleIntervalMs: delivery.idleIntervalMs,
      pauseRetryMs: delivery.pauseRetryMs,
      pauseAfterFailures: delivery.pauseAfterFailures,
      attemptBudgetMs: wooxy.timeoutMs + wooxy.timeoutGraceMs,
      webHookUri: this.opts.webHookUri,
      deadLetters: this.opts.deadLetters,
    });
    this.poller = new Poller({
      ctx,
      fence,
      log: log.child({ stage: 'reconcile' }),
      metrics,
      maxAttempts: delivery.maxAttempts,
      deadLetters: this.opts.deadLetters,
      client: this.opts.client,
      pollIntervalMs: reconcile.pollIntervalMs,
      warnAfterMs: reconcile.warnAfterHours * 3_600_000,
      keepResolvedMs: reconcile.keepResolvedHours * 3_600_000,
      keepHistoryMs: config.history.keepDays * 86_400_000,
      onRequeued: () => this.sender?.kick(),
    });
    this.sender.start();
    this.poller.start();
  }

  /** What a committed write means for operators: dead letters counted and named, a TRUNCATE said aloud, then the hold it caused. */
  private reportWrite(outcome: WriteOutcome): void {
    const { log, metrics } = this.opts;
    for (const d of outcome.invalid) {
      metrics.deadLetters.inc({ mapping: d.mapping, code: d.code });
      this.opts.deadLetters.report({ mapping: d.mapping, key: d.key, code: d.code, message: d.message });
    }
    for (const t of outcome.truncated) {
      log.warn({ mapping: t.mapping, removals: t.removals }, `TRUNCATE of mapping ${t.mapping}'s table: ${t.removals} contact(s) queued for removal`);
    }
    this.guard?.report(outcome.holds);
  }

  /**
   * Upstream first: stop reading, make what was received durable and acknowledge it; then let the calls in
   * flight be recorded, for at most delivery.drainTimeoutMs. A call abandoned after that keeps its lease, so
   * no one sends its contacts until Wooxy is done with it; a request Wooxy accepted that could not be
   * recorded is named at error level. Idempotent, and safe after a partial start.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { log, config } = this.opts;
      await this.monitor?.stop();
      await this.tables?.stop();
      await this.summary?.stop();
      this.opts.deadLetters.flush();
      await this.guard?.stop();
      await this.heartbeat?.stop();
      await this.snapshots?.stop();
      await this.stream?.stop();
      const drained = await within(Promise.all([this.sender?.stop(), this.poller?.stop()]), config.delivery.drainTimeoutMs);
      if (!drained) {
        log.warn(
          { drainTimeoutMs: config.delivery.drainTimeoutMs },
          'calls still in flight after the drain timeout: abandoned; their contacts wait for their lease to end and are sent again',
        );
      }
      this.sender?.abandon();
      for (const r of this.sender?.unrecordedRequests ?? []) {
        log.error({ requestId: r.requestId, mapping: r.mapping, op: r.op, contacts: r.contacts }, 'a request Wooxy accepted is not recorded: its contacts are sent again once their lease ends; this request is not reconciled');
      }
    })();
    return this.stopping;
  }
}
