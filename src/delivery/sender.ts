import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { DbHandle } from '../db/index.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { WooxyClient } from '../wooxy/client.js';
import { isWooxyError } from '../wooxy/errors.js';
import { decide, identifiersOf, orderMoves, type Address, type Decision, type Identifiers, type PendingEntry } from './plan.js';

export interface SenderOptions {
  handle: DbHandle;
  slot: string;
  client: WooxyClient;
  mappers: ReadonlyMap<string, Mapper>;
  log: Logger;
  metrics: Metrics;
  /** Contacts per add/update call, identifiers per remove call (≤ 100). */
  batchSize: number;
  /** Calls Wooxy takes at once (the limiter's concurrency); up to twice as many batches are under way. */
  concurrency: number;
  idleIntervalMs: number;
  /** After an authorization or list error, how long delivery waits before trying again. */
  pauseRetryMs: number;
  /** Where Wooxy should POST statuses, when a webhook receiver is configured. */
  webHookUri?: string;
}

type Op = 'add' | 'update' | 'remove';

interface Planned {
  entry: PendingEntry;
  decision: Exclude<Decision, { op: 'skip' }>;
}

interface Batch {
  mapper: Mapper;
  op: Op;
  upsert: boolean;
  items: Planned[];
}

const entryKey = (e: { mapping: string; key: string }) => `${e.mapping}\u0000${e.key}`;

/**
 * Turns pending outbox entries into Wooxy calls. An entry is taken only when its transaction is durable
 * (lsn ≤ durable LSN), it is due, and its contact has no unresolved request: at most one per contact. Calls
 * are grouped by list and operation, at most `batchSize` contacts each, and go through the client's one
 * limiter. The requestId, batch and send time land on every entry of a batch in one transaction.
 */
export class Sender {
  private readonly sending = new Set<string>();
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private pumping: Promise<void> | null = null;
  private pausedUntil = 0;
  /** What the current pause is about (code, mapping, messages), so each cause is logged once until a call succeeds. */
  private readonly pauseCauses = new Set<string>();
  /** kick() arrived while a cycle ran. */
  private again = false;
  private readonly batches = new Set<Promise<void>>();
  private readonly t;

  constructor(private readonly opts: SenderOptions) {
    const s = opts.handle.schema;
    this.t = { outbox: sql.id(s, 'outbox'), state: sql.id(s, 'contact_state'), repl: sql.id(s, 'replication_state'), requests: sql.id(s, 'requests'), dead: sql.id(s, 'dead_letters') };
  }

  start(): void {
    this.running = true;
    this.kick();
  }

  /** Stops taking work and waits for the batches in flight to be recorded. Idempotent. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.pumping;
    await Promise.allSettled([...this.batches]);
  }

  /** Looks for work now (the outbox writer or the reconciler calls this when they enqueue). */
  kick(): void {
    if (!this.running) return;
    if (this.pumping) {
      // The cycle running may have claimed before this work existed: look again as soon as it ends.
      this.again = true;
      return;
    }
    this.again = false;
    this.pumping = this.pump()
      .catch((e: unknown) => this.opts.log.error({ err: e }, 'delivery cycle failed; retrying'))
      .finally(() => {
        this.pumping = null;
        if (this.again) this.kick();
        else if (this.running && !this.timer) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.kick();
          }, this.opts.idleIntervalMs).unref();
        }
      });
  }

  /**
   * Up to twice as many batches as calls are under way: while the calls are out, full batches of a backlog
   * are claimed, marked and queued at the limiter, and finished ones recorded, so Postgres work overlaps
   * Wooxy's latency instead of adding to it (the limiter still holds calls to its concurrency). Beyond the
   * calls, only full batches go ahead: under a steady trickle a partial batch waits for a free call instead,
   * gathering what arrives meanwhile, or small batches would queue behind each other at the limiter.
   */
  private async pump(): Promise<void> {
    const calls = this.opts.concurrency;
    while (this.running && Date.now() >= this.pausedUntil && this.inFlight < 2 * calls) {
      const free = 2 * calls - this.inFlight;
      const entries = await this.claim(free * this.opts.batchSize);
      if (entries.length === 0) return;
      const batches = await this.plan(entries);
      if (batches.length === 0) continue;
      let dispatched = 0;
      for (const batch of batches) {
        if (this.inFlight >= calls && batch.items.length < this.opts.batchSize) continue;
        this.dispatch(batch);
        dispatched++;
      }
      // What is left waits for a call to finish (its end kicks the pump again).
      if (dispatched === 0) return;
    }
  }

  /**
   * The oldest due entries, skipping contacts with a request in flight (in Postgres, or still being sent by
   * this process). It runs once per finished batch, so its plan must stay proportional to `limit` however
   * large the backlog, and must not depend on fresh statistics: a backlog arrives faster than autovacuum
   * analyzes (it visits a database once a minute), and with an empty outbox's statistics the planner reads
   * and sorts every pending row on every claim (130 ms at 20k pending: quadratic over a backlog). So, for
   * this transaction only, no sorts and no bitmap scans: the plan left reads outbox_ready in order and stops
   * at the limit. NOT IN over the busy pairs is one hashed lookup per row (NOT EXISTS over unnest re-scanned
   * the array per row: 120 ms with 900 busy); OFFSET 0 keeps the inflight check a probe of the primary key
   * (as an anti-join it seq-scans the whole outbox).
   */
  private async claim(limit: number): Promise<PendingEntry[]> {
    const busy = [...this.sending].map((k) => k.split('\u0000') as [string, string]);
    const { rows } = await this.opts.handle.db.transaction().execute(async (trx) => {
      await sql`SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)`.execute(trx);
      return sql<{ mapping: string; source_key: string; payload: PendingEntry['payload']; synced: PendingEntry['synced']; maybe_ids: Identifiers | null; op_hint: PendingEntry['hint']; lsn: string; attempts: number }>`
      SELECT o.mapping, o.source_key, o.payload, s.synced, o.maybe_ids, o.op_hint, o.lsn::text AS lsn, o.attempts
      FROM ${this.t.outbox} o JOIN ${this.t.state} s ON s.mapping = o.mapping AND s.source_key = o.source_key
      WHERE o.state = 'pending' AND o.next_attempt_at <= now()
        AND o.lsn <= COALESCE((SELECT durable_lsn FROM ${this.t.repl} WHERE slot = ${this.opts.slot}), '0/0')
        AND (o.mapping, o.source_key) NOT IN (SELECT m, k FROM unnest(${busy.map((b) => b[0])}::text[], ${busy.map((b) => b[1])}::text[]) AS b(m, k))
        AND NOT EXISTS (SELECT 1 FROM ${this.t.outbox} i WHERE i.mapping = o.mapping AND i.source_key = o.source_key AND i.state = 'inflight' OFFSET 0)
      ORDER BY o.next_attempt_at
      LIMIT ${limit}`.execute(trx);
    });
    return rows
      .filter((r) => this.opts.mappers.has(r.mapping))
      .map((r) => ({ mapping: r.mapping, key: r.source_key, payload: r.payload, synced: r.synced, maybeIds: r.maybe_ids, hint: r.op_hint, lsn: r.lsn, attempts: r.attempts }));
  }

  /** Decides each entry's call, drops the ones with nothing to do, and groups the rest into batches. */
  private async plan(entries: PendingEntry[]): Promise<Batch[]> {
    const { deferred, replace } = orderMoves(entries);
    const skipped: PendingEntry[] = [];
    const later: PendingEntry[] = [];
    const groups = new Map<string, Batch>();
    for (const entry of entries) {
      const k = entryKey(entry);
      if (deferred.has(k)) {
        later.push(entry);
        continue;
      }
      const mapper = this.opts.mappers.get(entry.mapping)!;
      const decision = decide(replace.has(k) ? { ...entry, hint: 'replace' } : entry, mapper.upsert);
      if (decision.op === 'skip') {
        skipped.push(entry);
        continue;
      }
      const upsert = decision.op === 'update' && mapper.upsert;
      const g = `${entry.mapping}\u0000${decision.op}\u0000${upsert}`;
      let batch = groups.get(g);
      if (!batch || batch.items.length >= this.opts.batchSize) {
        if (batch) groups.set(`${g}\u0000${randomUUID()}`, batch);
        batch = { mapper, op: decision.op, upsert, items: [] };
        groups.set(g, batch);
      }
      batch.items.push({ entry, decision });
    }
    const db = this.opts.handle.db;
    if (skipped.length > 0) {
      const x = JSON.stringify(skipped.map((e) => ({ m: e.mapping, k: e.key, l: e.lsn })));
      await sql`DELETE FROM ${this.t.outbox} o USING jsonb_to_recordset(${x}::jsonb) AS x(m text, k text, l pg_lsn)
        WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k AND o.lsn = x.l`.execute(db);
      await this.collectGarbage(skipped);
    }
    if (later.length > 0) {
      const x = JSON.stringify(later.map((e) => ({ m: e.mapping, k: e.key })));
      await sql`UPDATE ${this.t.outbox} o SET next_attempt_at = now() + interval '200 milliseconds' FROM jsonb_to_recordset(${x}::jsonb) AS x(m text, k text)
        WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k`.execute(db);
    }
    return [...groups.values()];
  }

  /** Contacts deleted at the source and absent from Wooxy need no state any more. */
  private async collectGarbage(entries: PendingEntry[]): Promise<void> {
    const x = JSON.stringify(entries.map((e) => ({ m: e.mapping, k: e.key })));
    await sql`DELETE FROM ${this.t.state} s USING jsonb_to_recordset(${x}::jsonb) AS x(m text, k text)
      WHERE s.mapping = x.m AND s.source_key = x.k AND s.row IS NULL AND s.desired IS NULL AND s.synced IS NULL
        AND NOT EXISTS (SELECT 1 FROM ${this.t.outbox} o WHERE o.mapping = s.mapping AND o.source_key = s.source_key)`.execute(this.opts.handle.db);
  }

  private dispatch(batch: Batch): void {
    for (const { entry } of batch.items) this.sending.add(entryKey(entry));
    this.inFlight++;
    const p = this.send(batch)
      .catch((e: unknown) => this.opts.log.error({ err: e, mapping: batch.mapper.name, op: batch.op }, 'batch failed; its contacts will be retried'))
      .finally(() => {
        for (const { entry } of batch.items) this.sending.delete(entryKey(entry));
        this.inFlight--;
        this.batches.delete(p);
        this.kick();
      });
    this.batches.add(p);
  }

  private async send(batch: Batch): Promise<void> {
    const { log, metrics } = this.opts;
    const batchId = randomUUID();
    const db = this.opts.handle.db;
    // Before the call: Wooxy may hold these contacts from now on, whatever happens to this process.
    const marks = JSON.stringify(batch.items.map(({ entry, decision }) => ({ m: entry.mapping, k: entry.key, ids: decision.op === 'remove' ? null : identifiersOf(decision.contact) })));
    // Pending entries are locked in key order, as the outbox writer writes them: the writer updates the same
    // entries when a contact changes again, and two orders make a deadlock.
    await sql`WITH locked AS (
        SELECT o.mapping, o.source_key, x.ids FROM ${this.t.outbox} o JOIN jsonb_to_recordset(${marks}::jsonb) AS x(m text, k text, ids jsonb)
          ON o.mapping = x.m AND o.source_key = x.k
        WHERE o.state = 'pending' AND x.ids IS NOT NULL ORDER BY o.mapping, o.source_key FOR UPDATE OF o)
      UPDATE ${this.t.outbox} o SET maybe_ids = COALESCE(o.maybe_ids, '{}'::jsonb) || l.ids
      FROM locked l WHERE o.state = 'pending' AND o.mapping = l.mapping AND o.source_key = l.source_key`.execute(db);

    const started = process.hrtime.bigint();
    let requestId: string;
    try {
      requestId = await this.call(batch);
    } catch (e) {
      metrics.apiErrors.inc({ code: isWooxyError(e) ? e.code : 'UNKNOWN' });
      await this.onBatchError(batch, e);
      return;
    } finally {
      metrics.apiLatency.observe({ endpoint: `contacts/${batch.op}` }, Number(process.hrtime.bigint() - started) / 1e9);
    }
    metrics.requests.inc({ endpoint: `contacts/${batch.op}`, outcome: 'accepted' });
    metrics.deliveryPaused.set(0);
    this.pauseCauses.clear();
    metrics.contactsSent.inc({ op: batch.op }, batch.items.length);
    const x = JSON.stringify(
      batch.items.map(({ entry, decision }) => ({
        m: entry.mapping,
        k: entry.key,
        p: decision.op === 'remove' ? null : decision.contact,
        // The identifiers this call names the contact by: its results are matched back on them.
        ids: decision.op === 'add' ? identifiersOf(decision.contact) : { ...(decision.op === 'update' ? identifiersOf(decision.contact) : {}), [decision.address.kind]: decision.address.value },
        l: entry.lsn,
        a: entry.attempts,
        keep: decision.op === 'remove' && decision.keepPending,
      })),
    );
    // One statement, one round trip: the request, then the entries' move to in flight. The pending entries
    // are locked first and in key order, like every writer of pending entries (see the mark above); the
    // delete and the update reach them only through `locked`, so none is touched before all are locked.
    await sql`
      WITH x AS (SELECT * FROM jsonb_to_recordset(${x}::jsonb) AS x(m text, k text, p jsonb, ids jsonb, l pg_lsn, a int, keep boolean)),
      req AS (
        INSERT INTO ${this.t.requests} (request_id, mapping, list_id, op, batch_id, contact_count)
        VALUES (${requestId}, ${batch.mapper.name}, ${batch.mapper.listId}, ${batch.op}, ${batchId}, ${batch.items.length})
      ),
      locked AS MATERIALIZED (
        SELECT o.mapping, o.source_key, o.lsn FROM ${this.t.outbox} o JOIN x ON o.mapping = x.m AND o.source_key = x.k
        WHERE o.state = 'pending' ORDER BY o.mapping, o.source_key FOR UPDATE OF o
      ),
      moved AS (
        INSERT INTO ${this.t.outbox} (mapping, source_key, state, payload, lsn, attempts, request_id, batch_id, sent_op, sent_at, maybe_ids)
        SELECT m, k, 'inflight', NULLIF(p, 'null'), l, a, ${requestId}, ${batchId}, ${batch.op}, now(), ids FROM x
      ),
      -- The pending entry goes unless a newer change replaced it meanwhile (it is sent after this resolves).
      gone AS (
        DELETE FROM ${this.t.outbox} o USING locked l JOIN x ON x.m = l.mapping AND x.k = l.source_key
        WHERE o.state = 'pending' AND o.mapping = l.mapping AND o.source_key = l.source_key AND l.lsn = x.l AND NOT x.keep
      )
      UPDATE ${this.t.outbox} o SET op_hint = 'add' FROM locked l JOIN x ON x.m = l.mapping AND x.k = l.source_key
      WHERE o.state = 'pending' AND o.mapping = l.mapping AND o.source_key = l.source_key AND x.keep`.execute(db);
    log.debug({ requestId, batchId, mapping: batch.mapper.name, op: batch.op, contacts: batch.items.length }, 'batch accepted');
  }

  private async call(batch: Batch): Promise<string> {
    const { client } = this.opts;
    const base = { contactListId: batch.mapper.listId, ...(this.opts.webHookUri ? { webHookUri: this.opts.webHookUri } : {}) };
    if (batch.op === 'add') {
      return (await client.add({ ...base, contacts: batch.items.map((i) => (i.decision as { contact: object }).contact) })).requestId;
    }
    if (batch.op === 'update') {
      const contacts = batch.items.map((i) => {
        const d = i.decision as { contact: object; address: Address };
        return { ...d.contact, contact: d.address.value };
      });
      return (await client.update({ ...base, upsert: batch.upsert, contacts })).requestId;
    }
    const lists = { emails: [] as string[], phoneNumbers: [] as string[], userIds: [] as string[] };
    for (const i of batch.items) {
      const a = (i.decision as { address: Address }).address;
      (a.kind === 'email' ? lists.emails : a.kind === 'phoneNumber' ? lists.phoneNumbers : lists.userIds).push(a.value);
    }
    const body = Object.fromEntries(Object.entries(lists).filter(([, v]) => v.length > 0));
    return (await client.remove({ ...base, ...body })).requestId;
  }

  /**
   * A request-level rejection. Validation: split the batch until the contact(s) the message is about stand
   * alone, dead-letter those, send the rest. Authorization, an unknown list, or a rejection about the list's
   * setup (WOOXY_LIST_REJECTED: splitting would only dead-letter every contact, one call each): pause delivery
   * and say so once; the contacts stay pending. Anything else transient (the client already retried): back
   * off, the contacts stay pending.
   */
  private async onBatchError(batch: Batch, e: unknown): Promise<void> {
    const { log } = this.opts;
    if (isWooxyError(e, 'WOOXY_VALIDATION') || isWooxyError(e, 'WOOXY_LIMIT_EXCEEDED')) {
      if (batch.items.length > 1) {
        const half = Math.ceil(batch.items.length / 2);
        await Promise.all([this.send({ ...batch, items: batch.items.slice(0, half) }), this.send({ ...batch, items: batch.items.slice(half) })]);
        return;
      }
      const { entry, decision } = batch.items[0]!;
      await this.deadLetter(entry, batch.op, decision.op === 'remove' ? null : decision.contact, e.code, e.messages.join('; '));
      return;
    }
    if (isWooxyError(e, 'WOOXY_UNAUTHORIZED') || isWooxyError(e, 'WOOXY_LIST_NOT_FOUND') || isWooxyError(e, 'WOOXY_LIST_REJECTED')) {
      // Once per cause, not once per retry: the same refusal every pauseRetryMs is one incident.
      const cause = `${e.code}\u0000${batch.mapper.name}\u0000${e.messages.join('\u0000')}`;
      if (!this.pauseCauses.has(cause)) {
        log.error({ code: e.code, mapping: batch.mapper.name }, `delivery paused: ${e.message}; retrying every ${Math.round(this.opts.pauseRetryMs / 1000)} s`);
        this.pauseCauses.add(cause);
      }
      this.pausedUntil = Date.now() + this.opts.pauseRetryMs;
      this.opts.metrics.deliveryPaused.set(1);
      return;
    }
    log.warn({ err: e, mapping: batch.mapper.name, op: batch.op, contacts: batch.items.length }, 'batch not accepted; backing off');
    const x = JSON.stringify(batch.items.map(({ entry }) => ({ m: entry.mapping, k: entry.key })));
    await sql`UPDATE ${this.t.outbox} o SET next_attempt_at = now() + interval '5 seconds', last_error = ${e instanceof Error ? e.message : String(e)}
      FROM jsonb_to_recordset(${x}::jsonb) AS x(m text, k text) WHERE o.state = 'pending' AND o.mapping = x.m AND o.source_key = x.k`.execute(this.opts.handle.db);
  }

  private async deadLetter(entry: PendingEntry, op: Op, payload: object | null, code: string, message: string): Promise<void> {
    const db = this.opts.handle.db;
    await db.transaction().execute(async (trx) => {
      await sql`INSERT INTO ${this.t.dead} (mapping, source_key, op, payload, error_code, human_error)
        VALUES (${entry.mapping}, ${entry.key}, ${op}, ${payload ? JSON.stringify(payload) : null}::jsonb, ${code}, ${message})
        ON CONFLICT (mapping, source_key) DO UPDATE SET op = EXCLUDED.op, payload = EXCLUDED.payload, error_code = EXCLUDED.error_code,
          human_error = EXCLUDED.human_error, attempts = ${this.t.dead}.attempts + 1, last_seen = now()`.execute(trx);
      await sql`DELETE FROM ${this.t.outbox} WHERE state = 'pending' AND mapping = ${entry.mapping} AND source_key = ${entry.key} AND lsn = ${entry.lsn}::pg_lsn`.execute(trx);
    });
    this.opts.metrics.deadLetters.inc({ mapping: entry.mapping, code });
    this.opts.log.warn({ mapping: entry.mapping, key: entry.key, code, humanError: message }, 'contact dead-lettered');
  }
}
