import type { DbHandle } from '../db/index.js';
import { isCdcError } from '../errors.js';
import { backoffDelay, RECONNECT } from '../lib/backoff.js';
import { errorText } from '../lib/loop.js';
import { Waiter } from '../lib/sleep.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SnapshotWriter } from '../outbox/snapshot-writer.js';
import { storeContext } from '../store/context.js';
import { ProgressStore } from '../store/progress.js';
import { LogProgress } from './report.js';
import { runSnapshot, type RunnerOptions } from './runner.js';

export interface SnapshotServiceOptions {
  handle: DbHandle;
  mappers: readonly Mapper[];
  writer: SnapshotWriter;
  chunkSize: number;
  progressIntervalMs: number;
  log: Logger;
  metrics?: Metrics;
  /** snapshot.onStart: also snapshot the mappings never snapshotted (otherwise only what was asked for runs). */
  initial: boolean;
  /** Mappings that are stopped now (a schema change, a dropped table): not snapshotted while they are. */
  stopped?: () => ReadonlyMap<string, string>;
  /** Test seam, passed to every run. */
  afterRead?: RunnerOptions['afterRead'];
  /** Reconciliations wait for this process's stream first (see catch-up.ts). */
  catchUp?: RunnerOptions['catchUp'];
  /** Backoff after a failure: min(maxBackoffMs, baseBackoffMs·2^n). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * The connector's background snapshots, beside the stream, one mapping and one chunk at a time: every
 * snapshot or reconciliation that did not finish (one halfway resumes after its last chunk; one asked for by a
 * changed mapping, a lost slot or a restart after a stop starts from the first key), and, with
 * snapshot.onStart, every mapping never snapshotted. Work asked for while it runs is taken up at once
 * (`wake`). A failure is logged and retried with backoff from the persisted cursor; a snapshot another
 * process is running is waited for. `stop()` finishes the chunk in hand and is idempotent.
 */
export class SnapshotService {
  private readonly abort = new AbortController();
  private readonly waiter = new Waiter();
  private loop: Promise<void> | null = null;
  private idle = false;

  constructor(private readonly opts: SnapshotServiceOptions) {}

  /** True while nothing is left to snapshot or reconcile. */
  get done(): boolean {
    return this.idle;
  }

  start(): void {
    this.loop ??= this.run().catch((e: unknown) => this.opts.log.error({ error: errorText(e) }, 'snapshot service failed'));
  }

  /** New work was asked for (a reconciliation): look now. */
  wake(): void {
    this.idle = false;
    this.waiter.wake();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.waiter.wake();
    await this.loop;
  }

  /** The next mapping with work, in configuration order; null when there is none. */
  private async next(store: ProgressStore): Promise<Mapper | null> {
    const progress = new Map((await store.list()).map((p) => [p.mapping, p]));
    const stopped = this.opts.stopped?.() ?? new Map<string, string>();
    for (const m of this.opts.mappers) {
      if (stopped.has(m.name)) continue;
      const p = progress.get(m.name);
      if (p ? p.finishedAt === null : this.opts.initial) return m;
    }
    return null;
  }

  private async run(): Promise<void> {
    const { handle, log } = this.opts;
    const store = new ProgressStore(storeContext(handle));
    let attempt = 0;
    let waitingFor: string | null = null;
    while (!this.abort.signal.aborted) {
      let mapper: Mapper | null = null;
      try {
        mapper = await this.next(store);
        if (!mapper) {
          this.idle = true;
          await this.waiter.wait(60_000);
          continue;
        }
        const outcome = await runSnapshot(
          {
            handle,
            mapper,
            writer: this.opts.writer,
            chunkSize: this.opts.chunkSize,
            log,
            metrics: this.opts.metrics,
            progress: new LogProgress(log, this.opts.progressIntervalMs),
            signal: this.abort.signal,
            afterRead: this.opts.afterRead,
            catchUp: this.opts.catchUp,
          },
          { kind: 'snapshot', restart: false },
        );
        attempt = 0;
        waitingFor = null;
        if (!outcome.finished && !this.abort.signal.aborted) await this.waiter.wait(1_000);
      } catch (e) {
        if (this.abort.signal.aborted) break;
        if (isCdcError(e, 'SNAPSHOT_BUSY') && mapper) {
          if (waitingFor !== mapper.name) log.info({ mapping: mapper.name }, `${e.message}; waiting for it`);
          waitingFor = mapper.name;
          await this.waiter.wait(5_000);
          continue;
        }
        const delay = backoffDelay({ ...RECONNECT, baseMs: this.opts.baseBackoffMs ?? RECONNECT.baseMs, maxMs: this.opts.maxBackoffMs ?? RECONNECT.maxMs }, attempt++);
        log.error({ error: errorText(e), code: (e as { code?: string }).code, mapping: mapper?.name, retryInMs: delay }, `snapshot of ${mapper?.name ?? 'a mapping'} failed; resuming from its last chunk`);
        await this.waiter.wait(delay);
      }
    }
  }
}
