import type { Config } from './config/schema.js';
import { createDb, type DbHandle } from './db/index.js';
import { assertSchemaKnown, migrate } from './db/migrator.js';
import { compileMapping, type ContactCheck, type Mapper } from './mapping/mapper.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { OutboxWriter } from './outbox/writer.js';
import { SlotMonitor } from './source/monitor.js';
import { prepareSource } from './source/setup.js';
import { ReplicationStream } from './source/stream.js';
import type { ChangeSink } from './source/types.js';
import { Sender } from './delivery/sender.js';
import { applyStatus, type ApplyOptions } from './reconcile/apply.js';
import { Poller } from './reconcile/poller.js';
import { createWebhookHandler, WEBHOOK_PATH } from './reconcile/webhook.js';
import { startOpsServer } from './observability/server.js';
import { WooxyClient } from './wooxy/client.js';
import { createLimiter, type WooxyLimiter } from './wooxy/limiter.js';
import { validateContact } from './wooxy/validate.js';

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
}

/** The vendor's own rules (src/wooxy/validate.ts), applied to every row before it is queued. */
const vendorCheck: ContactCheck = (contact) => validateContact(contact, { mode: 'add', position: 0 });

/**
 * Wires the stages: replication stream → mapping → outbox (→ delivery → reconciliation). Owns their
 * lifecycles: `start()` prepares Postgres and starts every loop; `stop()` drains in order and is idempotent.
 */
export class Connector {
  readonly metrics: Metrics;
  readonly mappers: Mapper[];
  private handle: DbHandle | null = null;
  private stream: ReplicationStream | null = null;
  private monitor: SlotMonitor | null = null;
  private sender: Sender | null = null;
  private poller: Poller | null = null;
  private ops: { close: () => Promise<void>; port: number } | null = null;
  private stopping: Promise<void> | null = null;
  readonly limiter: WooxyLimiter;
  readonly client: WooxyClient;

  constructor(private readonly opts: ConnectorOptions) {
    this.metrics = opts.metrics ?? createMetrics();
    this.mappers = opts.config.mappings.map((m) => compileMapping(m, opts.check ?? vendorCheck));
    const w = opts.config.wooxy;
    // One limiter for every Wooxy call of the process: delivery and reconciliation share it.
    this.limiter = createLimiter({ concurrency: w.maxInFlight });
    this.client = new WooxyClient({
      accessToken: w.accessToken,
      baseUrl: w.baseUrl,
      limiter: this.limiter,
      timeoutMs: w.timeoutMs,
      retry: { maxAttempts: w.maxRetries + 1 },
      logger: opts.log,
    });
  }

  /** Port of the ops server (/healthz, /readyz, /metrics, webhook), when it runs. */
  get httpPort(): number | null {
    return this.ops?.port ?? null;
  }

  get replication(): ReplicationStream | null {
    return this.stream;
  }

  get db(): DbHandle {
    if (!this.handle) throw new Error('connector not started');
    return this.handle;
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    const pg = config.postgres;
    this.handle = createDb({ url: pg.url, schema: pg.schema, poolSize: pg.poolSize, applicationName: pg.applicationName });
    if (this.opts.migrate ?? true) {
      const { applied } = await migrate(this.handle.db, pg.schema);
      if (applied.length) log.info({ schema: pg.schema, applied }, 'migrations applied');
    } else {
      await assertSchemaKnown(this.handle.db, pg.schema);
    }
    const baseline = await prepareSource({ url: pg.url, slot: pg.slot, publication: pg.publication, autoCreate: pg.autoCreate, mappers: this.mappers, log });
    const writer = new OutboxWriter(this.handle.db, pg.schema, new Map(this.mappers.map((m) => [m.name, m])), pg.slot);
    // Delivery looks for work as soon as new entries are durable, not at its next idle tick.
    const sink: ChangeSink = {
      durableLsn: () => writer.durableLsn(),
      write: async (changes, durableLsn) => {
        const outcome = await writer.write(changes, durableLsn);
        if (durableLsn) this.sender?.kick();
        return outcome;
      },
    };
    this.stream = new ReplicationStream({
      url: pg.url,
      slot: pg.slot,
      publication: pg.publication,
      applicationName: pg.applicationName,
      mappers: this.mappers,
      baseline,
      sink,
      log: log.child({ stage: 'source', slot: pg.slot }),
      metrics: this.metrics,
      flushChanges: config.capture.flushChanges,
      flushIntervalMs: config.capture.flushIntervalMs,
    });
    this.stream.start();
    this.monitor = new SlotMonitor(this.handle, pg.slot, this.metrics, log.child({ stage: 'monitor' }));
    this.monitor.start();
    if (this.opts.captureOnly) return;

    const mappers = new Map(this.mappers.map((m) => [m.name, m]));
    const { webhook, delivery, reconcile } = config;
    const webHookUri = webhook.publicUrl && webhook.secret ? `${webhook.publicUrl.replace(/\/+$/, '')}${WEBHOOK_PATH}${encodeURIComponent(webhook.secret)}` : undefined;
    this.sender = new Sender({
      handle: this.handle,
      slot: pg.slot,
      client: this.client,
      mappers,
      log: log.child({ stage: 'delivery' }),
      metrics: this.metrics,
      batchSize: delivery.batchSize,
      concurrency: this.limiter.concurrency,
      idleIntervalMs: delivery.idleIntervalMs,
      pauseRetryMs: delivery.pauseRetryMs,
      webHookUri,
    });
    const applyOpts: ApplyOptions = { handle: this.handle, log: log.child({ stage: 'reconcile' }), metrics: this.metrics, maxAttempts: delivery.maxAttempts };
    this.poller = new Poller({
      ...applyOpts,
      client: this.client,
      pollIntervalMs: reconcile.pollIntervalMs,
      warnAfterMs: reconcile.warnAfterHours * 3_600_000,
      onRequeued: () => this.sender?.kick(),
    });
    const routes = [];
    if (webhook.secret) {
      const handle = createWebhookHandler({
        secret: webhook.secret,
        log: log.child({ stage: 'webhook' }),
        metrics: this.metrics,
        apply: async (status) => {
          const outcome = await applyStatus(applyOpts, status, 'webhook');
          if (outcome === 'applied') this.sender?.kick();
          return outcome;
        },
      });
      routes.push({ prefix: WEBHOOK_PATH, handle });
    }
    if (config.http.port !== 0 || webhook.secret) {
      this.ops = await startOpsServer({
        host: config.http.host,
        port: config.http.port,
        metrics: this.metrics,
        log,
        ready: () => this.stream?.isStreaming ?? false,
        routes,
      });
    }
    this.sender.start();
    this.poller.start();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.monitor?.stop();
      // Upstream first: stop reading and make what arrived durable, then let in-flight calls be recorded.
      await this.stream?.stop();
      await this.sender?.stop();
      await this.poller?.stop();
      await this.ops?.close();
      await this.handle?.close();
    })();
    return this.stopping;
  }
}
