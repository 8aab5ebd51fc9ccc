import { readStatus, type Status } from './admin/status.js';
import type { Config } from './config/schema.js';
import { createDb, dbOptions, stateUrlOf, type DbHandle } from './db/index.js';
import { durableSessionOptions } from './db/durability.js';
import { assertSchemaKnown, migrate } from './db/migrator.js';
import { LeaderElection, type Role } from './ha/leader.js';
import { compileMapping, type ContactCheck, type Mapper } from './mapping/mapper.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { startOpsServer, type ReadyState } from './observability/server.js';
import { Pipeline } from './pipeline.js';
import type { SnapshotService } from './snapshot/service.js';
import { applyStatus, type ApplyOptions } from './reconcile/apply.js';
import { DeadLetterLog } from './observability/activity.js';
import { storeContext } from './store/context.js';
import { createWebhookHandler, WEBHOOK_PATH } from './reconcile/webhook.js';
import type { ReplicationStream } from './source/stream.js';
import { backoffDelay, RECONNECT } from './lib/backoff.js';
import { sleep } from './lib/sleep.js';
import { WooxyClient } from './wooxy/client.js';
import { createLimiter, type WooxyLimiter } from './wooxy/limiter.js';
import { vendorCheck } from './mapping/vendor-check.js';

export interface ConnectorOptions {
  config: Config;
  log: Logger;
  metrics?: Metrics;
  /** Apply pending migrations at start (default true); false: refuse to start on an unmigrated schema. */
  migrate?: boolean;
  /** The vendor's row checks, applied before anything is sent (default: the shared validator). */
  check?: ContactCheck;
  /** Capture only: no delivery or reconciliation (tests of the capture stage). */
  captureOnly?: boolean;
  /** The file the configuration came from: /status names it in the commands it suggests, as `status` does. */
  configFile?: string;
}

/**
 * One instance of the connector. `start()` migrates, opens the ops server (health, readiness, metrics,
 * webhook) and joins the leader election; as leader it runs the pipeline (stream → outbox → delivery →
 * reconciliation), as a standby it waits to take over. `stop()` stops the pipeline in order, releases the
 * lock, closes everything, and is idempotent.
 */
export class Connector {
  readonly metrics: Metrics;
  readonly mappers: Mapper[];
  readonly limiter: WooxyLimiter;
  readonly client: WooxyClient;
  private handle: DbHandle | null = null;
  private election: LeaderElection | null = null;
  private pipeline: Pipeline | null = null;
  private ops: { close: () => Promise<void>; port: number } | null = null;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private tearingDown: Promise<void> | null = null;
  private restarting: Promise<void> | null = null;
  /** Aborted when a term of leadership ends: cuts retry backoffs short (see the client's sleep). */
  private term = new AbortController();
  /** The /status report being read: requests that arrive meanwhile share it, so a burst costs one read. */
  private statusRead: Promise<Status> | null = null;

  constructor(private readonly opts: ConnectorOptions) {
    this.metrics = opts.metrics ?? createMetrics();
    this.mappers = opts.config.mappings.map((m) => compileMapping(m, opts.check ?? vendorCheck));
    const w = opts.config.wooxy;
    // One limiter for every Wooxy call of the process: delivery and reconciliation share it.
    this.limiter = createLimiter({ concurrency: w.maxInFlight });
    this.metrics.watchLimiter(this.limiter);
    this.client = new WooxyClient({
      accessToken: w.accessToken,
      baseUrl: w.baseUrl,
      limiter: this.limiter,
      timeoutMs: w.timeoutMs,
      timeoutGraceMs: w.timeoutGraceMs,
      retry: { maxAttempts: w.maxRetries + 1 },
      logger: opts.log,
      // A call waiting to retry when leadership ends (or the process stops) gives up at once instead of
      // holding the drain for up to a minute of backoff: delivery keeps its contacts pending, and they are
      // sent again. (The sender passes no signal of its own; the client's sleep is the one place to cut.)
      sleep: (ms, signal) => sleep(ms, signal ? AbortSignal.any([signal, this.term.signal]) : this.term.signal),
    });
  }

  /** Port of the ops server (/healthz, /readyz, /metrics, webhook), when it runs. */
  get httpPort(): number | null {
    return this.ops?.port ?? null;
  }

  /** The replication stream of the current term of leadership; null as a standby. */
  get replication(): ReplicationStream | null {
    return this.pipeline?.replication ?? null;
  }

  get role(): Role {
    return this.election?.role ?? 'starting';
  }

  /** The background snapshots of the current term (null as a standby, or when snapshot.onStart is false). */
  get snapshot(): SnapshotService | null {
    return this.pipeline?.snapshot ?? null;
  }

  get db(): DbHandle {
    if (!this.handle) throw new Error('connector not started');
    return this.handle;
  }

  /** Ready: the leader while it streams, a standby while its lock connection answers. */
  readiness(): ReadyState {
    const role = this.role;
    if (this.stopping) return { ready: false, role: 'stopping' };
    if (role === 'leader') return { ready: this.pipeline?.isStreaming ?? false, role };
    return { ready: role === 'standby' && (this.election?.healthy ?? false), role };
  }

  /**
   * What `status --json` prints, read through this instance's pool: the connector's state as Postgres has it,
   * the same from the leader and from a standby. Read-only; concurrent calls share one read.
   */
  status(): Promise<Status> {
    const { config, configFile } = this.opts;
    this.statusRead ??= readStatus(this.db, config, configFile).finally(() => (this.statusRead = null));
    return this.statusRead;
  }

  /**
   * Resolves once the role is known: a standby, or the leader with its pipeline started. On failure
   * everything opened so far is closed again, so nothing keeps the process alive.
   */
  start(): Promise<void> {
    this.starting ??= this.startUp().catch(async (e: unknown) => {
      await this.teardown();
      throw e;
    });
    return this.starting;
  }

  private async startUp(): Promise<void> {
    const { config, log } = this.opts;
    const pg = config.postgres;
    const sessionOptions = await durableSessionOptions(stateUrlOf(pg), pg.applicationName);
    if (sessionOptions) log.info({ synchronousCommit: 'on' }, 'synchronous_commit is off on this server, database or role: the connector raises it to on for its own sessions');
    // The state where postgres.stateUrl says, the source apart when it is elsewhere (src/db/index.ts).
    this.handle = createDb(dbOptions(pg, { poolSize: pg.poolSize, options: sessionOptions }));
    if (this.handle.separate) log.info({ schema: pg.schema }, "the connector's state and leader lock live in postgres.stateUrl's database, apart from the source");
    if (this.opts.migrate ?? true) {
      const { applied } = await migrate(this.handle.db, pg.schema);
      if (applied.length) log.info({ schema: pg.schema, applied }, 'migrations applied');
    } else {
      await assertSchemaKnown(this.handle.db, pg.schema);
    }
    // Webhook statuses: any instance may receive them, unfenced (see ApplyOptions.fence).
    const deadLetters = new DeadLetterLog(log.child({ stage: 'dead-letters' }));
    const applyOptions: ApplyOptions = { ctx: storeContext(this.handle, { history: config.history.keepDays > 0 }), fence: null, log: log.child({ stage: 'webhook' }), metrics: this.metrics, maxAttempts: config.delivery.maxAttempts, deadLetters };
    const { webhook } = config;
    const routes = [];
    if (webhook.secret) {
      // Any instance may apply a status (it is one locked transaction); the leader's delivery is then nudged.
      const handle = createWebhookHandler({
        secret: webhook.secret,
        log: log.child({ stage: 'webhook' }),
        metrics: this.metrics,
        apply: async (status) => {
          const outcome = await applyStatus(applyOptions, status, 'webhook');
          if (outcome === 'applied') this.pipeline?.kick();
          return outcome;
        },
      });
      routes.push({ prefix: WEBHOOK_PATH, handle });
    }
    if (config.http.port !== 0 || webhook.secret) {
      this.ops = await startOpsServer({ host: config.http.host, port: config.http.port, metrics: this.metrics, log, ready: () => this.readiness(), status: () => this.status(), routes });
    }
    const webHookUri = webhook.publicUrl && webhook.secret ? `${webhook.publicUrl.replace(/\/+$/, '')}${WEBHOOK_PATH}${encodeURIComponent(webhook.secret)}` : undefined;
    this.election = new LeaderElection({
      url: stateUrlOf(pg),
      slot: pg.slot,
      schema: pg.schema,
      sessionOptions,
      applicationName: pg.applicationName,
      pollIntervalMs: config.ha.pollIntervalMs,
      log: log.child({ stage: 'election' }),
      metrics: this.metrics,
      onElected: async (fence) => {
        this.term = new AbortController();
        const build = () =>
          new Pipeline({
            config,
            log: log.child({ epoch: fence.epoch }),
            metrics: this.metrics,
            handle: this.handle!,
            mappers: this.mappers,
            client: this.client,
            fence,
            concurrency: this.limiter.concurrency,
            webHookUri,
            captureOnly: this.opts.captureOnly,
            onRestart: (reason) => void this.restartPipeline(build, reason),
            deadLetters,
          });
        this.pipeline = build();
        this.metrics.watchStreaming(() => this.pipeline?.isStreaming ?? false);
        await this.pipeline.start();
      },
      onDeposed: async (reason) => {
        log.info({ reason }, 'stopping the pipeline');
        this.term.abort(new Error('wooxy-cdc is stopping this pipeline: the retry was abandoned; the contacts stay pending'));
        await this.restarting;
        await this.pipeline?.stop();
        this.pipeline = null;
      },
    });
    await this.election.start();
  }

  /**
   * Builds this term's pipeline again (a mapped table was created again: its publication, baseline and
   * reconciliation are decided at start). Within the same term, so with the same fence; a failure to start
   * is retried with backoff, never left as a leader that does nothing.
   */
  private async restartPipeline(build: () => Pipeline, reason: string): Promise<void> {
    if (this.restarting) return;
    this.restarting = (async () => {
      const { log } = this.opts;
      log.warn({ reason }, 'restarting the pipeline');
      await this.pipeline?.stop();
      for (let attempt = 0; this.role === 'leader' && !this.stopping; attempt++) {
        try {
          this.pipeline = build();
          await this.pipeline.start();
          return;
        } catch (e) {
          await this.pipeline?.stop().catch(() => undefined);
          const delay = backoffDelay(RECONNECT, attempt);
          log.error({ error: (e as Error).message, code: (e as { code?: string }).code, retryInMs: delay }, 'the pipeline could not start again; retrying');
          await sleep(delay, this.term.signal).catch(() => undefined);
        }
      }
    })().finally(() => (this.restarting = null));
    await this.restarting;
  }

  /** Stops the pipeline in order, releases the lock, closes the server and the pool. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // A start in progress finishes first: what it opens is then closed below, not leaked.
      await this.starting?.catch(() => undefined);
      await this.teardown();
    })();
    return this.stopping;
  }

  private teardown(): Promise<void> {
    this.tearingDown ??= (async () => {
      // The pipeline stops (draining what it can) before the lock is released, so a standby never starts
      // while this instance still works.
      await this.election?.stop();
      await this.ops?.close();
      await this.handle?.close();
    })();
    return this.tearingDown;
  }
}
