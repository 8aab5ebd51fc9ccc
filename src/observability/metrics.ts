import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the in-flight gauges read at scrape time: the Wooxy limiter's counts (src/wooxy/limiter.ts). */
export interface LimiterView {
  readonly inFlight: number;
  readonly pending: number;
}

/**
 * Every metric of the process, in one registry, so /metrics (issue 6) and tests read the same objects.
 * Names follow Prometheus conventions: a `wooxy_cdc_` prefix, base units, `_total` for counters.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'wooxy_cdc_process_' });
  // Read at scrape time, so the gauges are exact without a sampling loop.
  let limiter: LimiterView | null = null;
  let streaming: () => boolean = () => false;
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
    mappingErrors: new Gauge({ name: 'wooxy_cdc_mapping_stopped', help: '1 while a mapping is stopped: its table or a column it reads is gone, or a type it cannot read', labelNames: ['mapping'], registers: [registry] }),
    sourceGaps: new Counter({
      name: 'wooxy_cdc_source_gaps_total',
      help: 'Times the stream missed changes (slot lost, invalidated, moved ahead, publication lost) and every mapping was reconciled',
      labelNames: ['code'],
      registers: [registry],
    }),
    sourceFault: new Gauge({
      name: 'wooxy_cdc_source_fault',
      help: '1 while the stream cannot read the slot for a named reason (slot missing or invalidated, publication missing)',
      labelNames: ['fault'],
      registers: [registry],
    }),
    requests: new Counter({ name: 'wooxy_cdc_requests_total', help: 'Wooxy calls by endpoint and outcome', labelNames: ['endpoint', 'outcome'], registers: [registry] }),
    requestStatuses: new Counter({ name: 'wooxy_cdc_request_statuses_total', help: 'Resolved Wooxy requests by final status and how we learnt it', labelNames: ['status', 'via'], registers: [registry] }),
    contactsSent: new Counter({ name: 'wooxy_cdc_contacts_sent_total', help: 'Contacts sent to Wooxy by operation', labelNames: ['op'], registers: [registry] }),
    contactResults: new Counter({ name: 'wooxy_cdc_contact_results_total', help: 'Per-contact outcomes reported by Wooxy', labelNames: ['result'], registers: [registry] }),
    apiErrors: new Counter({ name: 'wooxy_cdc_api_errors_total', help: 'Failed Wooxy calls by error code', labelNames: ['code'], registers: [registry] }),
    apiLatency: new Histogram({ name: 'wooxy_cdc_api_latency_seconds', help: 'Wooxy call duration, retries included', labelNames: ['endpoint'], buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] }),
    deliveryPaused: new Gauge({
      name: 'wooxy_cdc_delivery_paused',
      help: "1 while a mapping's delivery is paused: Wooxy refuses the token or the list, or calls keep failing",
      labelNames: ['mapping'],
      registers: [registry],
    }),
    unresolvedRequests: new Gauge({ name: 'wooxy_cdc_unresolved_requests', help: 'Wooxy requests not yet resolved', registers: [registry] }),
    oldestUnresolvedSeconds: new Gauge({ name: 'wooxy_cdc_oldest_unresolved_request_age_seconds', help: 'Age of the oldest unresolved request (statuses vanish after 7 days)', registers: [registry] }),
    expiredRequests: new Counter({ name: 'wooxy_cdc_requests_expired_total', help: 'Requests Wooxy no longer knew (past retention); their contacts were sent again', registers: [registry] }),
    webhookRejected: new Counter({ name: 'wooxy_cdc_webhook_rejected_total', help: 'Webhook calls refused (bad secret or body)', labelNames: ['reason'], registers: [registry] }),
    reconnects: new Counter({ name: 'wooxy_cdc_replication_reconnects_total', help: 'Replication connection attempts after a failure', registers: [registry] }),
    snapshotRowsDone: new Gauge({ name: 'wooxy_cdc_snapshot_rows_done', help: 'Rows of the current (or last) snapshot read and written, by mapping', labelNames: ['mapping'], registers: [registry] }),
    snapshotRowsTotal: new Gauge({ name: 'wooxy_cdc_snapshot_rows_expected', help: 'Rows the current snapshot expects to read (exact for small tables, an estimate for large ones), by mapping', labelNames: ['mapping'], registers: [registry] }),
    snapshotRows: new Counter({ name: 'wooxy_cdc_snapshot_rows_read_total', help: 'Rows read by snapshots and resyncs of this process', labelNames: ['mapping', 'mode'], registers: [registry] }),
    streaming: new Gauge({
      name: 'wooxy_cdc_replication_streaming',
      help: '1 while this process streams from the slot',
      registers: [registry],
      collect() {
        this.set(streaming() ? 1 : 0);
      },
    }),
    leader: new Gauge({ name: 'wooxy_cdc_leader', help: '1 while this instance holds the leader lock and works; 0 as a standby', registers: [registry] }),
    leaderTransitions: new Counter({ name: 'wooxy_cdc_leader_transitions_total', help: 'Times this instance became leader (to) or stopped being one (from)', labelNames: ['direction'], registers: [registry] }),
    retainedWalBytes: new Gauge({ name: 'wooxy_cdc_slot_retained_wal_bytes', help: "WAL the slot keeps on the server: pg_current_wal_lsn() − restart_lsn", registers: [registry] }),
    walWarning: new Gauge({ name: 'wooxy_cdc_slot_retained_wal_warning', help: '1 while the retained WAL is above postgres.walWarnBytes', registers: [registry] }),
    heartbeats: new Counter({ name: 'wooxy_cdc_heartbeats_total', help: 'Heartbeat messages written to the WAL so an idle slot still advances', labelNames: ['outcome'], registers: [registry] }),
    removalsHeld: new Gauge({ name: 'wooxy_cdc_removals_held', help: "Removals the mass-removal guard holds (contacts), by mapping: they wait for `wooxy-cdc removals approve` or `discard`", labelNames: ['mapping'], registers: [registry] }),
    deadLetterContacts: new Gauge({ name: 'wooxy_cdc_dead_letter_contacts', help: 'Contacts in the dead-letter table now, by mapping and error code', labelNames: ['mapping', 'code'], registers: [registry] }),
    apiInFlight: new Gauge({
      name: 'wooxy_cdc_api_requests_in_flight',
      help: 'Wooxy calls running now (the vendor allows 10)',
      registers: [registry],
      collect() {
        this.set(limiter?.inFlight ?? 0);
      },
    }),
    apiQueued: new Gauge({
      name: 'wooxy_cdc_api_requests_queued',
      help: 'Wooxy calls waiting for a slot of the limiter',
      registers: [registry],
      collect() {
        this.set(limiter?.pending ?? 0);
      },
    }),
    /** Points the in-flight and queued gauges at the process's one Wooxy limiter. */
    watchLimiter(view: LimiterView): void {
      limiter = view;
    },
    /** What the streaming gauge reads at scrape time. */
    watchStreaming(isStreaming: () => boolean): void {
      streaming = isStreaming;
    },
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
