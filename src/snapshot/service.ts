import type { DbHandle } from '../db/index.js';
import { isCdcError } from '../errors.js';
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
  /** Mappings the stream has stopped (a schema change): not snapshotted until the connector restarts. */
  stopped?: () => ReadonlyMap<string, string>;
  /** Test seam, passed to every run. */
  afterRead?: RunnerOptions['afterRead'];
  /** Backoff after a failure: min(maxBackoffMs, baseBackoffMs·2^n). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * The connector's background snapshots: at start, every mapping whose snapshot never finished is
 * snapshotted (a halfway one resumes), one mapping and one chunk at a time, beside the stream. A failure is
 * logged and retried with backoff from the persisted cursor; a snapshot another process is running is
 * waited for. `stop()` finishes the chunk in hand and is idempotent.
 */
export class SnapshotService {
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private finished = false;

  constructor(private readonly opts: SnapshotServiceOptions) {}

  /** True once every mapping's snapshot has finished. */
  get done(): boolean {
    return this.finished;
  }

  start(): void {
    this.loop ??= this.run().catch((e: unknown) => this.opts.log.error({ err: e }, 'snapshot service failed'));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { handle, log } = this.opts;
    const store = new ProgressStore(storeContext(handle));
    for (const mapper of this.opts.mappers) {
      let attempt = 0;
      let waitingLogged = false;
      while (!this.abort.signal.aborted) {
        try {
          const stoppedReason = this.opts.stopped?.().get(mapper.name);
          if (stoppedReason) {
            log.warn({ mapping: mapper.name }, `snapshot of ${mapper.name} skipped: the mapping is stopped (${stoppedReason})`);
            break;
          }
          if ((await store.get(mapper.name))?.finishedAt) break;
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
            },
            { kind: 'snapshot', restart: false },
          );
          if (outcome.finished) break;
        } catch (e) {
          if (this.abort.signal.aborted) break;
          if (isCdcError(e, 'SNAPSHOT_BUSY')) {
            if (!waitingLogged) log.info({ mapping: mapper.name }, `${e.message}; waiting for it`);
            waitingLogged = true;
            await this.pause(5_000);
            continue;
          }
          const delay = Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.baseBackoffMs ?? 1_000) * 2 ** attempt++);
          log.error({ err: e, mapping: mapper.name, retryInMs: delay }, `snapshot of ${mapper.name} failed; resuming from its last chunk`);
          await this.pause(delay);
        }
      }
      if (this.abort.signal.aborted) return;
    }
    this.finished = true;
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
