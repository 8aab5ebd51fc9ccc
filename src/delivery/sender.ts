import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { failpoint } from '../failpoints.js';
import { errorText } from '../lib/loop.js';
import type { Mapper } from '../mapping/mapper.js';
import type { DeadLetterLog } from '../observability/activity.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { StoreContext } from '../store/context.js';
import { claimDue, dropSettled, markSending, recordAccepted, rejectContact, releaseClaims, renewLeases, type SentContact } from '../store/delivery.js';
import { recordPauseChange, type PauseChange } from '../store/pauses.js';
import { isFenced, type Fence } from '../store/tx.js';
import type { WooxyClient } from '../wooxy/client.js';
import { isWooxyError, type WooxyError } from '../wooxy/errors.js';
import { callBody, entryKey, planBatches, type Batch } from './batches.js';
import { MappingHealth } from './health.js';
import { identifiersOf } from './plan.js';

export interface SenderOptions {
  ctx: StoreContext;
  /** This leader's term: claims and marks are fenced with it. */
  fence: Fence;
  client: WooxyClient;
  mappers: ReadonlyMap<string, Mapper>;
  log: Logger;
  metrics: Metrics;
  /** Contacts per add/update call, identifiers per remove call (≤ 100). */
  batchSize: number;
  /** Calls Wooxy takes at once (the limiter's concurrency); up to twice as many batches are under way. */
  concurrency: number;
  idleIntervalMs: number;
  /** After an authorization or list error, or a run of failures, how long a mapping's delivery waits. */
  pauseRetryMs: number;
  /** Transient failures in a row that pause a mapping. */
  pauseAfterFailures: number;
  /** The longest one attempt may take at Wooxy: the client's timeout plus its grace after a timeout. */
  attemptBudgetMs: number;
  /** Where Wooxy should POST statuses, when a webhook receiver is configured. */
  webHookUri?: string;
  /** Where each dead letter is named (rate-limited). */
  deadLetters: DeadLetterLog;
}

/** A request Wooxy accepted that is not recorded yet. */
interface Unrecorded {
  requestId: string;
  mapping: string;
  op: string;
  contacts: number;
}

/**
 * Turns pending outbox entries into Wooxy calls: claim (a lease in Postgres), plan, mark, call, record.
 * An entry is claimed only when durable, due, of a configured and unpaused mapping, and its contact has no
 * unresolved request. Calls are grouped by list and operation, at most `batchSize` contacts each, and go
 * through the client's one limiter. A claim lasts as long as its call can (renewed before each attempt), so
 * no other process sends the same contact meanwhile, and a deposed leader's writes fail closed (the fence).
 * What Wooxy accepted is recorded whoever leads by then.
 */
export class Sender {
  private readonly sending = new Set<string>();
  private readonly unrecorded = new Map<string, Unrecorded>();
  private readonly health: MappingHealth;
  private readonly owner = `${hostname()} pid ${process.pid}`;
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private fenced = false;
  private pumping: Promise<void> | null = null;
  /** kick() arrived while a cycle ran. */
  private again = false;
  private readonly batches = new Set<Promise<void>>();
  /** Aborted when the process gives up on its last records (a graceful stop past the drain timeout). */
  private readonly giveUp = new AbortController();
  /** Pause changes being written, one after the other, so a resume never lands before its pause. */
  private recording: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SenderOptions) {
    this.health = new MappingHealth({
      log: opts.log,
      metrics: opts.metrics,
      pauseRetryMs: opts.pauseRetryMs,
      pauseAfterFailures: opts.pauseAfterFailures,
      onChange: (change) => this.recordPause(change),
    });
  }

  /**
   * A pause or its end, written for `status` in the background: delivery never waits for it. A write that
   * fails is logged and dropped; the metric and the log line have already said it.
   */
  private recordPause(change: PauseChange): void {
    this.recording = this.recording
      .then(() => recordPauseChange(this.opts.ctx, this.opts.fence, change))
      .catch((e: unknown) => {
        if (isFenced(e)) return;
        this.opts.log.warn({ mapping: change.mapping, paused: change.paused, error: errorText(e) }, 'could not record a delivery pause for status; the pause itself goes on');
      });
  }

  /**
   * A lease: one attempt's budget (its timeout and the grace after it) and a few seconds for what surrounds it.
   * It is renewed right before each attempt when less than that is left (a long wait at the limiter, a
   * retry's backoff). It is also how long a crashed leader's call keeps its contacts from being sent again:
   * until Wooxy must be done with it.
   */
  private get leaseMs(): number {
    return this.opts.attemptBudgetMs + 5_000;
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
    await this.recording;
  }

  /**
   * Ends the retries of records that have not landed (the stop's drain timeout passed): the process is about to
   * close its pool. What is left is in unrecordedRequests.
   */
  abandon(): void {
    this.giveUp.abort(new Error('the connector stops: this record is abandoned'));
  }

  /** Requests Wooxy accepted whose record has not landed (yet): logged at error level if the process stops so. */
  get unrecordedRequests(): Unrecorded[] {
    return [...this.unrecorded.values()];
  }

  /** Mappings whose delivery is paused, with the cause. */
  get pausedMappings() {
    return this.health.paused();
  }

  /** Looks for work now (the outbox writer or the reconciler calls this when they enqueue). */
  kick(): void {
    if (!this.running || this.fenced) return;
    if (this.pumping) {
      // The cycle running may have claimed before this work existed: look again as soon as it ends.
      this.again = true;
      return;
    }
    this.again = false;
    this.pumping = this.pump()
      .catch((e: unknown) => this.onFailure(e, 'delivery cycle failed; retrying'))
      .finally(() => {
        this.pumping = null;
        if (this.again) this.kick();
        else if (this.running && !this.timer && !this.fenced) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.kick();
          }, this.opts.idleIntervalMs).unref();
        }
      });
  }

  private onFailure(e: unknown, message: string): void {
    if (isFenced(e)) {
      if (!this.fenced) this.opts.log.warn({ error: errorText(e) }, 'delivery stops: another instance leads now');
      this.fenced = true;
      return;
    }
    this.opts.log.error({ error: errorText(e), code: (e as { code?: string }).code }, message);
  }

  /**
   * Up to twice as many batches as calls are under way: while the calls are out, full batches of a backlog
   * are claimed, marked and queued at the limiter, and finished ones recorded, so Postgres work overlaps
   * Wooxy's latency instead of adding to it (the limiter still holds calls to its concurrency). Beyond the
   * calls, only full batches go ahead: under a steady trickle a partial batch waits for a free call instead
   * (its claims are given back), gathering what arrives meanwhile.
   */
  private async pump(): Promise<void> {
    const { ctx, fence, batchSize, concurrency: calls } = this.opts;
    while (this.running && !this.fenced && this.inFlight < 2 * calls) {
      const mappings = this.health.active([...this.opts.mappers.keys()]);
      if (mappings.length === 0) return;
      const free = 2 * calls - this.inFlight;
      const entries = await claimDue(ctx, {
        fence,
        owner: this.owner,
        mappings,
        busy: [...this.sending].map((k) => k.split('\u0000') as [string, string]),
        limit: free * batchSize,
        leaseMs: this.leaseMs,
      });
      if (entries.length === 0) return;
      const plan = planBatches(entries, this.opts.mappers, batchSize);
      await dropSettled(ctx, fence, plan.skipped);
      // A contact waiting for another to let go of an identifier looks again shortly.
      await releaseClaims(ctx, fence, plan.deferred, { delayMs: 200 });
      const left: Batch[] = [];
      for (const batch of plan.batches) {
        if (this.inFlight >= calls && batch.items.length < batchSize) left.push(batch);
        else this.dispatch(batch);
      }
      if (left.length > 0) {
        // What is left waits for a call to finish (its end kicks the pump again).
        await releaseClaims(ctx, fence, left.flatMap((b) => b.items.map((i) => i.entry)));
        return;
      }
    }
  }

  private dispatch(batch: Batch): void {
    for (const { entry } of batch.items) this.sending.add(entryKey(entry));
    this.inFlight++;
    const p = this.send(batch)
      .catch((e: unknown) => this.onFailure(e, 'batch failed; its contacts will be retried'))
      .finally(() => {
        for (const { entry } of batch.items) this.sending.delete(entryKey(entry));
        this.inFlight--;
        this.batches.delete(p);
        this.kick();
      });
    this.batches.add(p);
  }

  /** Marks the batch, then calls. A contact whose claim lapsed meanwhile (another process took it) is left out. */
  private async send(batch: Batch): Promise<void> {
    const batchId = randomUUID();
    const marks = batch.items.map(({ entry, decision }) => ({
      mapping: entry.mapping,
      key: entry.key,
      ids: decision.op === 'remove' ? null : identifiersOf(decision.contact),
      removes: decision.op === 'remove',
    }));
    let marked: Set<string>;
    try {
      marked = await markSending(this.opts.ctx, this.opts.fence, batchId, marks, this.leaseMs);
    } catch (e) {
      await this.release(batch);
      throw e;
    }
    const items = batch.items.filter(({ entry }) => marked.has(entryKey(entry)));
    if (items.length > 0) await this.call({ ...batch, items }, batchId);
  }

  /**
   * One call and what follows: record it when accepted; split it when Wooxy rejects a contact's data; pause
   * the mapping when Wooxy refuses the token or the list; otherwise back off. The lease is renewed before an
   * attempt when what is left of it could not cover the attempt.
   */
  private async call(batch: Batch, batchId: string): Promise<void> {
    const { client, metrics, log, ctx, fence } = this.opts;
    let leaseEnds = Date.now() + this.leaseMs;
    const entries = batch.items.map((i) => i.entry);
    const beforeAttempt = async () => {
      if (leaseEnds - Date.now() >= this.opts.attemptBudgetMs + 2_000) return;
      const held = await renewLeases(ctx, fence, entries, this.leaseMs);
      if (held < entries.length) throw new Error('a claim of this batch was lost; not sending it');
      leaseEnds = Date.now() + this.leaseMs;
    };
    const endpoint = `contacts/${batch.op}`;
    const started = process.hrtime.bigint();
    let requestId: string;
    try {
      failpoint(`delivery.before-${batch.op}`);
      const body = callBody(batch);
      const base = { contactListId: batch.mapper.listId, ...(this.opts.webHookUri ? { webHookUri: this.opts.webHookUri } : {}) };
      const options = { beforeAttempt };
      if (body.op === 'add') requestId = (await client.add({ ...base, contacts: body.contacts }, options)).requestId;
      else if (body.op === 'update') requestId = (await client.update({ ...base, upsert: body.upsert, contacts: body.contacts }, options)).requestId;
      else {
        const { op: _op, ...ids } = body;
        requestId = (await client.remove({ ...base, ...ids }, options)).requestId;
      }
    } catch (e) {
      metrics.apiErrors.inc({ code: isWooxyError(e) ? e.code : isFenced(e) ? 'LEADER_FENCED' : 'UNKNOWN' });
      await this.onCallError(batch, e);
      return;
    } finally {
      metrics.apiLatency.observe({ endpoint }, Number(process.hrtime.bigint() - started) / 1e9);
    }
    failpoint(`delivery.after-${batch.op}`);
    metrics.requests.inc({ endpoint, outcome: 'accepted' });
    metrics.contactsSent.inc({ op: batch.op }, batch.items.length);
    this.health.accepted(batch.mapper.name);
    await this.record(batch, batchId, requestId);
    log.debug({ requestId, batchId, mapping: batch.mapper.name, op: batch.op, contacts: batch.items.length }, 'batch accepted');
  }

  /**
   * Records an accepted request until it lands: through database outages, and after this instance lost its
   * leadership (the record is not fenced). Only the end of the process stops it; a graceful stop reports
   * what is still unrecorded (see unrecordedRequests).
   */
  private async record(batch: Batch, batchId: string, requestId: string): Promise<void> {
    const contacts: SentContact[] = batch.items.map(({ entry, decision }) => ({
      mapping: entry.mapping,
      key: entry.key,
      payload: decision.op === 'remove' ? null : decision.contact,
      ids: decision.op === 'add' ? identifiersOf(decision.contact) : { ...(decision.op === 'update' ? identifiersOf(decision.contact) : {}), [decision.address.kind]: decision.address.value },
      lsn: entry.lsn,
      attempts: entry.attempts,
      keepPending: decision.op === 'remove' && decision.keepPending,
    }));
    this.unrecorded.set(requestId, { requestId, mapping: batch.mapper.name, op: batch.op, contacts: contacts.length });
    const { stray } = await recordAccepted(
      this.opts.ctx,
      { requestId, batchId, mapping: batch.mapper.name, listId: batch.mapper.listId, op: batch.op, epoch: this.opts.fence.epoch, contacts },
      {
        forever: true,
        signal: this.giveUp.signal,
        onRetry: (e, attempt, delayMs) =>
          this.opts.log.warn({ requestId, attempt, retryInMs: delayMs, error: errorText(e) }, 'recording an accepted request failed; retrying until it lands'),
      },
    );
    this.unrecorded.delete(requestId);
    if (stray > 0) {
      this.opts.log.warn({ requestId, mapping: batch.mapper.name, stray }, 'contacts of this request were already in flight in another request: they are sent again once it resolves');
    }
  }

  /**
   * A call that did not end in a requestId. Only a documented rejection of the data splits the batch, until
   * the contact it is about stands alone and is dead-lettered with Wooxy's message. Authorization and list
   * errors pause the mapping. An unknown outcome (a timeout: the client held the call's slot for the grace
   * period) sends the contacts' current state again now. Anything else backs off.
   */
  private async onCallError(batch: Batch, e: unknown): Promise<void> {
    const mapping = batch.mapper.name;
    if (isWooxyError(e, 'WOOXY_VALIDATION') || isWooxyError(e, 'WOOXY_LIMIT_EXCEEDED')) {
      if (batch.items.length > 1) {
        const half = Math.ceil(batch.items.length / 2);
        await Promise.all([this.call({ ...batch, items: batch.items.slice(0, half) }, randomUUID()), this.call({ ...batch, items: batch.items.slice(half) }, randomUUID())]);
        return;
      }
      const { entry, decision } = batch.items[0]!;
      const message = e.messages.join('; ');
      await rejectContact(this.opts.ctx, this.opts.fence, entry, { op: batch.op, payload: decision.op === 'remove' ? null : decision.contact, code: e.code, message });
      this.opts.metrics.deadLetters.inc({ mapping, code: e.code });
      this.opts.deadLetters.report({ mapping, key: entry.key, code: e.code, message });
      return;
    }
    if (isWooxyError(e, 'WOOXY_UNAUTHORIZED') || isWooxyError(e, 'WOOXY_LIST_NOT_FOUND') || isWooxyError(e, 'WOOXY_LIST_REJECTED')) {
      await this.release(batch, { delayMs: this.health.refused(mapping, e), lastError: e.message });
      return;
    }
    if (isFenced(e)) {
      await this.release(batch);
      throw e;
    }
    if (isWooxyError(e) && e.outcomeUnknown) {
      // Wooxy may have applied it, or may still: the marks say what it may have done, and the grace has passed.
      this.opts.log.warn({ mapping, op: batch.op, contacts: batch.items.length, code: e.code }, 'a call timed out: its outcome is unknown; its contacts are sent again from their current state');
      this.health.failed(mapping, e);
      await this.release(batch, { delayMs: 0, lastError: e.message });
      return;
    }
    const delayMs = this.health.failed(mapping, e as WooxyError | Error);
    await this.release(batch, { delayMs, lastError: errorText(e) });
  }

  private async release(batch: Batch, opts: { delayMs?: number; lastError?: string } = {}): Promise<void> {
    await releaseClaims(
      this.opts.ctx,
      this.opts.fence,
      batch.items.map((i) => i.entry),
      opts,
    );
  }
}
