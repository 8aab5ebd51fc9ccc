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

export interface ConnectorOptions {
  config: Config;
  log: Logger;
  metrics?: Metrics;
  /** Apply pending migrations at start (default true); false: refuse to start on an unmigrated schema. */
  migrate?: boolean;
  /** The vendor's row checks, applied before anything is sent. */
  check?: ContactCheck;
}

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
  private stopping: Promise<void> | null = null;

  constructor(private readonly opts: ConnectorOptions) {
    this.metrics = opts.metrics ?? createMetrics();
    this.mappers = opts.config.mappings.map((m) => compileMapping(m, opts.check));
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
    this.stream = new ReplicationStream({
      url: pg.url,
      slot: pg.slot,
      publication: pg.publication,
      applicationName: pg.applicationName,
      mappers: this.mappers,
      baseline,
      sink: writer,
      log: log.child({ stage: 'source', slot: pg.slot }),
      metrics: this.metrics,
      flushChanges: config.capture.flushChanges,
      flushIntervalMs: config.capture.flushIntervalMs,
    });
    this.stream.start();
    this.monitor = new SlotMonitor(this.handle, pg.slot, this.metrics, log.child({ stage: 'monitor' }));
    this.monitor.start();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.monitor?.stop();
      await this.stream?.stop();
      await this.handle?.close();
    })();
    return this.stopping;
  }
}
