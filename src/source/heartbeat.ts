import { sql } from 'kysely';
import type { Db } from '../db/index.js';
import { BackgroundLoop } from '../lib/loop.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** The prefix of the connector's logical messages; the stream ignores their content, only their commit matters. */
export const HEARTBEAT_PREFIX = 'wooxy-cdc';

/**
 * Writes a transactional logical message every interval. pgoutput skips transactions that touch no published
 * table, so when only unrelated tables change, the stream receives nothing to acknowledge and the slot pins
 * every WAL segment written since. A heartbeat is a transaction the stream does receive (it subscribes with
 * `messages: true`): its commit goes the normal way — recorded durable, then acknowledged — and the slot's
 * confirmed and restart positions move forward (Debezium's heartbeat.action.query does the same).
 */
export class Heartbeat {
  private readonly loop: BackgroundLoop;
  private failing = false;

  constructor(
    private readonly db: Db,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.loop = new BackgroundLoop({ name: 'heartbeat', log, intervalMs: Math.max(1, intervalMs), tick: () => this.beat() });
  }

  start(): void {
    if (this.intervalMs > 0) this.loop.start(this.intervalMs);
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Writes one heartbeat now. Never throws: a failure is counted and reported once per streak. */
  async beat(): Promise<void> {
    try {
      await sql`SELECT pg_logical_emit_message(true, ${HEARTBEAT_PREFIX}, 'heartbeat')`.execute(this.db);
      this.metrics.heartbeats.inc({ outcome: 'written' });
      if (this.failing) this.log.info('heartbeat written again');
      this.failing = false;
    } catch (e) {
      this.metrics.heartbeats.inc({ outcome: 'failed' });
      // Once per streak of failures: the database being down is reported louder elsewhere.
      if (!this.failing) this.log.warn({ error: (e as Error).message }, 'heartbeat failed; an idle slot may retain WAL until it succeeds');
      this.failing = true;
    }
  }
}
