/**
 * The emulator's state and behaviour, free of HTTP: accounts, lists and their contacts, accepted requests and
 * their asynchronous processing, faults, the clock. api.ts puts the vendor’s endpoints in front of it and
 * control.ts the inspection endpoints; tests may also drive it in-process through createEmulator's handle.
 */
import { ACCESS_TOKEN_HEADER, Messages } from '../wooxy/messages.js';
import type { Endpoint, RequestStatus } from '../wooxy/types.js';
import { validateAddRequest, validateFindRequest, validateRemoveRequest, validateUpdateRequest, type RequestContext } from '../wooxy/validate-request.js';
import { EmulatorClock, formatTimestamp, objectId, seededRandom, shuffle, type Random } from './clock.js';
import { DEFAULT_FAULTS, faultsPatchSchema, type EmulatorConfig, type FaultKind, type Faults, type FaultsPatch, type ListConfig } from './config.js';
import { OverlapTracker } from './overlaps.js';
import { processRequest } from './processor.js';
import { RequestBook, toStatus, type AsyncEndpoint, type RequestRecord } from './requests.js';
import { Stalls } from './stalls.js';
import { Recorder, type EmulatorStats } from './stats.js';
import { ListStore, contactView, listSchemaOf } from './store.js';
import { WebhookSender } from './webhooks.js';

const DAY_MS = 86_400_000;

/** Faults decided when a request arrives, before it is read; savingError is decided once it is valid. */
type ArrivalFault = Exclude<FaultKind, 'savingError'>;

export class EmulatorEngine {
  readonly clock = new EmulatorClock();
  readonly book = new RequestBook();
  readonly recorder: Recorder;
  readonly webhooks: WebhookSender;
  /** Stalled calls still being worked on; idle() waits for them. */
  readonly stalls = new Stalls(() => this.#notify());
  /** Contacts named by two requests that are both still new. */
  readonly overlaps = new OverlapTracker();
  readonly seed: number;
  faults: Faults = { ...DEFAULT_FAULTS };
  #lists = new Map<string, ListStore>();
  readonly #sourceIds: ReadonlySet<string>;
  #random!: { faults: Random; ids: Random; order: Random; processing: Random; webhooks: Random };
  #timer: NodeJS.Timeout | undefined;
  #idleWaiters = new Set<() => void>();
  #closed = false;
  /** Numbers the undocumented failures, so no two read alike and a client cannot match on the text. */
  #undocumented = 0;

  constructor(readonly config: EmulatorConfig) {
    this.seed = config.seed ?? Math.floor(Math.random() * 2 ** 31);
    this.recorder = new Recorder(config.requestLogLimit);
    this.#sourceIds = new Set(config.sourceIds);
    this.webhooks = new WebhookSender({ ...config.webhooks, logLimit: config.requestLogLimit }, () => this.#random.webhooks(), () => this.faults.webhookDropRate, () => this.#notify());
    this.reset();
  }

  /**
   * Back to the configured state: no contacts, no requests, empty logs, configured faults, clock at wall time.
   * Stalled calls are abandoned (their connections dropped, nothing queued or logged), so none lands in the new state.
   */
  reset(): void {
    this.stalls.abandonAll();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#undocumented = 0;
    const s = this.seed;
    this.#random = { faults: seededRandom(s), ids: seededRandom(s + 1), order: seededRandom(s + 2), processing: seededRandom(s + 3), webhooks: seededRandom(s + 4) };
    this.faults = { ...DEFAULT_FAULTS, ...structuredClone(this.config.faults) };
    this.#lists = new Map(this.config.lists.map((l) => [l.id, new ListStore(listSchemaOf(l))]));
    this.book.clear();
    this.overlaps.reset();
    this.recorder.reset();
    this.webhooks.clear();
    this.clock.reset();
    this.#notify();
  }

  // --- lists ---------------------------------------------------------------------------------------------

  lists(): { id: string; variables: { name: string; type: string }[]; contacts: number }[] {
    return [...this.#lists.values()].map((s) => ({
      id: s.schema.id,
      variables: [...s.schema.variables].map(([name, type]) => ({ name, type })),
      contacts: s.size,
    }));
  }

  /** Creates a list, or replaces an existing list's variables (its contacts stay). */
  defineList(list: ListConfig): void {
    const schema = listSchemaOf(list);
    const existing = this.#lists.get(list.id);
    if (existing) existing.schema = schema;
    else this.#lists.set(list.id, new ListStore(schema));
  }

  contacts(listId: string): Record<string, unknown>[] | undefined {
    return this.#lists.get(listId)?.all().map(contactView);
  }

  // --- authorization and faults -------------------------------------------------------------------------

  /** The vendor's answer to this token, or undefined when it may pass. */
  authorize(token: string | undefined, endpoint: Endpoint): string | undefined {
    if (token === undefined || token === '') return Messages.required(ACCESS_TOKEN_HEADER);
    const account = this.config.tokens.find((t) => t.token === token);
    const userId = account?.userId ?? '1';
    switch (this.faults.authError) {
      case 'invalid':
        return Messages.invalidToken;
      case 'noMatches':
        return Messages.noMatchesForToken(token);
      case 'notEnabled':
        return Messages.userNotEnabled(userId);
      case 'noData':
        return Messages.noDataForKey(userId);
      case 'checkFailed':
        return Messages.tokenCheckFailed(userId, token, endpoint === 'contacts/add' ? 'add' : undefined);
      case null:
        break;
    }
    if (this.faults.revokedTokens.includes(token)) return Messages.noMatchesForToken(token);
    if (!account) return Messages.invalidToken;
    if (!account.enabled) return Messages.userNotEnabled(account.userId);
    return undefined;
  }

  setFaults(patch: FaultsPatch): Faults {
    const parsed = faultsPatchSchema.parse(patch);
    this.faults = { ...this.faults, ...parsed };
    return this.faults;
  }

  /** Milliseconds to hold this answer back. */
  latency(): number {
    const { latencyMs, latencyJitterMs } = this.faults;
    return latencyMs + (latencyJitterMs > 0 ? Math.floor(this.#random.faults() * (latencyJitterMs + 1)) : 0);
  }

  arrivalFault(endpoint: Endpoint): ArrivalFault | undefined {
    const scripted = this.#takeScripted(endpoint, (k) => k !== 'savingError');
    if (scripted) return scripted as ArrivalFault;
    const f = this.faults;
    if (this.#roll(f.rateLimitRate)) return 'rateLimit';
    if (this.#roll(f.timeoutRate)) return 'timeout';
    if (this.#roll(f.stallRate)) return 'stall';
    if (this.#roll(f.serverErrorRate)) return 'serverError';
    if (this.#roll(f.badResponseRate)) return 'badResponse';
    if (this.#roll(f.undocumentedRate)) return 'undocumented';
    return undefined;
  }

  /** The message of an undocumented failure (the emulator's own wording: no page lists one). */
  undocumentedError(): string {
    return `Something unexpected happened #${++this.#undocumented}`;
  }

  savingFault(endpoint: Endpoint): boolean {
    return this.#takeScripted(endpoint, (k) => k === 'savingError') !== undefined || this.#roll(this.faults.savingErrorRate);
  }

  #takeScripted(endpoint: Endpoint, wanted: (k: FaultKind) => boolean): FaultKind | undefined {
    const i = this.faults.next.findIndex((n) => wanted(n.kind) && (n.endpoint === undefined || n.endpoint === endpoint));
    const entry = this.faults.next[i];
    if (!entry) return undefined;
    const rest = entry.count - 1;
    this.faults.next = rest > 0 ? this.faults.next.map((n, j) => (j === i ? { ...n, count: rest } : n)) : this.faults.next.filter((_, j) => j !== i);
    return entry.kind;
  }

  /** Rolls only for a non-zero rate, so an unused fault leaves the seeded sequence alone. */
  #roll(rate: number): boolean {
    return rate > 0 && this.#random.faults() < rate;
  }

  // --- the API -------------------------------------------------------------------------------------------

  newId(): string {
    return objectId(this.clock.now(), this.#random.ids);
  }

  validate(endpoint: Endpoint, body: unknown): string[] {
    const ctx: RequestContext = { findList: (id) => this.#lists.get(id)?.schema, knownSourceIds: this.#sourceIds };
    switch (endpoint) {
      case 'contacts/add':
        return validateAddRequest(body, ctx);
      case 'contacts/update':
        return validateUpdateRequest(body, ctx);
      case 'contacts/remove':
        return validateRemoveRequest(body, ctx);
      case 'request/find':
        return validateFindRequest(body);
    }
  }

  /** Queues a validated request; it stays `new` for the processing delay. Overlaps are counted here. */
  accept(endpoint: AsyncEndpoint, id: string, body: Record<string, unknown>): RequestRecord {
    const now = this.clock.now();
    const record: RequestRecord = {
      id,
      endpoint,
      listId: String(body.contactListId),
      webHookUri: typeof body.webHookUri === 'string' ? body.webHookUri : null,
      status: 'new',
      createdAtMs: now,
      updatedAtMs: now,
      dueAtMs: now + this.config.processing.delayMs,
      seq: this.book.nextSeq(),
      body: structuredClone(body),
      results: { errors: [], success: [] },
    };
    this.book.add(record);
    this.overlaps.accepted(record);
    this.#schedule();
    return record;
  }

  /** request/find: the statuses still within the retention window. */
  find(ids: readonly string[]): Record<string, RequestStatus> {
    this.purge();
    const out: Record<string, RequestStatus> = {};
    for (const id of ids) {
      const r = this.book.get(id);
      if (r) out[id] = toStatus(r);
    }
    return out;
  }

  purge(): number {
    return this.book.purge(this.clock.now(), this.config.retentionDays * DAY_MS, (r) => this.overlaps.settled(r.id));
  }

  // --- processing ----------------------------------------------------------------------------------------

  /** Processes every pending request now, whatever its due time; returns how many. */
  processNow(): number {
    const pending = this.book.pending();
    this.#process(pending);
    this.#schedule();
    return pending.length;
  }

  advanceClock(ms: number): void {
    this.clock.advance(ms);
    this.#runDue();
    this.purge();
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || !this.config.processing.auto || this.book.pendingCount === 0) return;
    let next = Infinity;
    for (const r of this.book.pending()) next = Math.min(next, r.dueAtMs);
    this.#timer = setTimeout(() => this.#runDue(), Math.max(0, next - this.clock.now()));
  }

  #runDue(): void {
    if (this.config.processing.auto) {
      const now = this.clock.now();
      this.#process(this.book.pending().filter((r) => r.dueAtMs <= now));
    }
    this.#schedule();
  }

  #process(records: RequestRecord[]): void {
    if (records.length === 0) return;
    const batch = this.config.processing.randomOrder ? shuffle([...records], this.#random.order) : records;
    for (const record of batch) this.#processOne(record);
    this.#notify();
  }

  #processOne(record: RequestRecord): void {
    const nowMs = this.clock.now();
    const store = this.#lists.get(record.listId);
    const failRequest = !store || this.#rollProcessing(this.faults.processingFailureRate);
    const outcome = processRequest(record, store ?? new ListStore({ id: record.listId, variables: new Map() }), {
      now: formatTimestamp(nowMs),
      newContactId: () => this.newId(),
      failRequest,
      failContact: () => this.#rollProcessing(this.faults.contactErrorRate),
    });
    this.book.finish(record, outcome.status, outcome.results, nowMs);
    this.overlaps.settled(record.id);
    const p = this.recorder.processing;
    p.processed++;
    if (outcome.status === 'fail') p.failedRequests++;
    p.contactsSucceeded += outcome.results.success.length;
    p.contactsFailed += outcome.results.errors.length;
    if (record.webHookUri) this.webhooks.send(record.webHookUri, toStatus(record));
  }

  #rollProcessing(rate: number): boolean {
    return rate > 0 && this.#random.processing() < rate;
  }

  // --- waiting -------------------------------------------------------------------------------------------

  /**
   * Idle: no call is stalled, nothing due for automatic processing is pending, and no webhook is being
   * delivered. With `processing.auto: false` pending requests wait for processNow() and do not count.
   */
  isIdle(): boolean {
    const pending = this.config.processing.auto ? this.book.pendingCount : 0;
    return this.stalls.size === 0 && pending === 0 && this.webhooks.inFlight === 0;
  }

  idle(timeoutMs = 10_000): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#idleWaiters.delete(done);
        reject(new Error(`emulator not idle after ${timeoutMs} ms (stalled ${this.stalls.size}, pending ${this.book.pendingCount}, webhooks ${this.webhooks.inFlight})`));
      }, timeoutMs);
      this.#idleWaiters.add(done);
    });
  }

  #notify(): void {
    if (!this.isIdle()) return;
    for (const waiter of [...this.#idleWaiters]) waiter();
  }

  stats(): EmulatorStats {
    const r = this.recorder;
    return {
      seed: this.seed,
      inFlight: r.inFlight,
      peakConcurrency: r.peakConcurrency,
      rejectedConcurrency: r.rejectedConcurrency,
      requests: r.requests,
      byEndpoint: structuredClone(r.byEndpoint),
      stalls: this.stalls.counts(),
      overlaps: this.overlaps.stats(),
      processing: { pending: this.book.pendingCount, ...r.processing },
      webhooks: { ...this.webhooks.counts, inFlight: this.webhooks.inFlight },
    };
  }

  close(): void {
    this.#closed = true;
    this.stalls.abandonAll();
    clearTimeout(this.#timer);
    this.webhooks.cancelAll();
  }
}
