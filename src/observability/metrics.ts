import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric of the process, in one registry, so /metrics (issue 6) and tests read the same objects.
 * Names follow Prometheus conventions: a `wooxy_cdc_` prefix, base units, `_total` for counters.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'wooxy_cdc_process_' });
  const m = {
    registry,
    changes: new Counter({ name: 'wooxy_cdc_changes_total', help: 'Row changes read from the replication stream', labelNames: ['mapping', 'kind'], registers: [registry] }),
    transactions: new Counter({ name: 'wooxy_cdc_transactions_total', help: 'Source transactions made durable in the outbox', registers: [registry] }),
    outboxFlushes: new Counter({ name: 'wooxy_cdc_outbox_flushes_total', help: 'Outbox write transactions', registers: [registry] }),
    outboxFlushSeconds: new Histogram({ name: 'wooxy_cdc_outbox_flush_seconds', help: 'Duration of one outbox write transaction', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    outboxDepth: new Gauge({ name: 'wooxy_cdc_outbox_depth', help: 'Outbox entries by state', labelNames: ['state'], registers: [registry] }),
    replicationLagBytes: new Gauge({ name: 'wooxy_cdc_replication_lag_bytes', help: "WAL between the server's current position and the slot's confirmed position", registers: [registry] }),
    durableLsn: new Gauge({ name: 'wooxy_cdc_durable_lsn', help: 'Last LSN durable in the outbox (as a number)', registers: [registry] }),
    deadLetters: new Counter({ name: 'wooxy_cdc_dead_letters_total', help: 'Contacts dead-lettered', labelNames: ['mapping', 'code'], registers: [registry] }),
    mappingErrors: new Gauge({ name: 'wooxy_cdc_mapping_stopped', help: '1 when a mapping is stopped by a schema change', labelNames: ['mapping'], registers: [registry] }),
    reconnects: new Counter({ name: 'wooxy_cdc_replication_reconnects_total', help: 'Replication connection attempts after a failure', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
