import type { ContactPayload, Mapper, Row } from '../mapping/mapper.js';
import type { Lsn } from '../source/lsn.js';
import type { ChangeSink, RowChange } from '../source/types.js';
import { failpoint } from '../failpoints.js';
import { analyzeQueue, applyChanges, loadStates, readDurableLsn, recordDurableLsn, takeWriterTurn, truncateMapping, type StateRecord } from '../store/capture.js';
import type { StoreContext } from '../store/context.js';
import { upsertDeadLetters, type DeadLetterRecord } from '../store/dead-letters.js';
import { transaction, type Fence, type Trx } from '../store/tx.js';
import { desiredOf } from './desired.js';
import type { GuardEvent, RemovalGuard } from './removal-guard.js';

export interface WriteOutcome {
  /** Contacts whose desired state changed: one pending outbox entry each (coalesced). */
  enqueued: number;
  /** Changes that left the desired state as it was (e.g. only unmapped columns changed). */
  unchanged: number;
  deadLettered: number;
  /** The rows the vendor's rules rejected (ROW_INVALID), for metrics and logs once the write committed. */
  invalid: DeadLetterRecord[];
  /** TRUNCATEs of mapped tables in this write, with the removals each queued. */
  truncated: Array<{ mapping: string; removals: number }>;
  /** Holds of the mass-removal guard this write began or ended (to report once it committed). */
  holds: GuardEvent[];
}

interface Working {
  row: Row | null;
  desired: ContactPayload | null;
  /** Whether `desired` is the contact's current desired state (loaded, or set earlier in the batch). */
  desiredKnown: boolean;
  /** The latest change was invalid (dead-lettered) and the desired state is unknown here: keep the stored one. */
  keepDesired: boolean;
  touched: boolean;
  lsn: Lsn;
  /** Top-level xid of the latest change (null when the change did not say). */
  xid: number | null;
}

/**
 * Applies row changes to the per-contact state and the coalescing outbox, and records the durable LSN, all
 * in one transaction: either every effect of a batch is durable together with its LSN, or none is.
 * Every statement is set-based (unnest), so a batch costs a handful of round trips whatever its size.
 */
export class OutboxWriter implements ChangeSink {
  private enqueuedSinceAnalyze = 0;
  private nextAnalyzeAfter = 10_000;
  private analyzing = false;

  /**
   * `fence`: the leader's term, when the writer belongs to a leader's pipeline (its writes then fail closed
   * once another instance leads); null for tests of capture alone. `guard`: judges the removals each write
   * queues, in its transaction (none: capture alone).
   */
  constructor(
    private readonly ctx: StoreContext,
    private readonly mappers: ReadonlyMap<string, Mapper>,
    private readonly slot: string,
    private readonly fence: Fence | null,
    private readonly guard: RemovalGuard | null = null,
  ) {}

  /** The LSN recorded as durable for this slot ('0/0' when none). */
  async durableLsn(): Promise<Lsn> {
    return readDurableLsn(this.ctx, this.slot);
  }

  async write(changes: readonly RowChange[], durableLsn: Lsn | null): Promise<WriteOutcome> {
    const outcome = await this.writeOnce(changes, durableLsn);
    this.analyzeAfterGrowth(outcome.enqueued);
    return outcome;
  }

  /**
   * Delivery and reconciliation lock some of the same rows (a contact's pending entry, its state). A deadlock
   * victim is rolled back whole, so nothing of this batch is durable and it can simply run again; failing
   * instead would cost the stream a reconnect and a replay from the slot.
   */
  private async writeOnce(changes: readonly RowChange[], durableLsn: Lsn | null): Promise<WriteOutcome> {
    return transaction(this.ctx, this.fence, (trx) => this.writeIn(trx, changes, durableLsn), { attempts: 3 });
  }

  /**
   * Refreshes the planner's statistics of the outbox and contact states once this process has enqueued 10k
   * entries, then again after twice as many more each time. A backlog fills a fresh outbox far faster than autovacuum analyzes it (once a
   * minute at best), and without statistics Postgres takes most entries for in-flight ones: delivery's
   * statements that look up a batch of entries by key then hash-join the whole backlog instead of probing
   * the primary key, once per batch, quadratic over the backlog. Doubling keeps it to a few ANALYZEs of
   * sampled rows per process; a role that does not own the tables gets a warning from Postgres, not an error.
   * It runs beside the stream, on another connection: statistics only help the planner, so neither waiting
   * for them nor failing to refresh them may hold up or fail a write that committed.
   */
  private analyzeAfterGrowth(enqueued: number): void {
    this.enqueuedSinceAnalyze += enqueued;
    if (this.enqueuedSinceAnalyze < this.nextAnalyzeAfter || this.analyzing) return;
    this.enqueuedSinceAnalyze = 0;
    this.nextAnalyzeAfter *= 2;
    this.analyzing = true;
    void analyzeQueue(this.ctx)
      .catch(() => undefined)
      .finally(() => (this.analyzing = false));
  }

  private async writeIn(trx: Trx, changes: readonly RowChange[], durableLsn: Lsn | null): Promise<WriteOutcome> {
    const outcome: WriteOutcome = { enqueued: 0, unchanged: 0, deadLettered: 0, invalid: [], truncated: [], holds: [] };
    await takeWriterTurn(this.ctx, trx);
    const working = await this.load(trx, changes);
    // By contact: a later valid change of the same batch withdraws an earlier ROW_INVALID (dead letters describe the present).
    const dead = new Map<string, DeadLetterRecord>();
    const truncated: Array<{ mapping: string; lsn: Lsn; xid: number | null }> = [];

    for (const change of changes) {
      const mapper = this.mappers.get(change.mapping);
      if (!mapper) continue;
      if (change.kind === 'truncate') {
        truncated.push({ mapping: change.mapping, lsn: change.lsn, xid: change.xid ?? null });
        for (const [k, w] of working) {
          if (k.startsWith(`${change.mapping}\u0000`)) Object.assign(w, { row: null, desired: null, desiredKnown: true, keepDesired: false, touched: true, lsn: change.lsn, xid: change.xid ?? null });
        }
        continue;
      }
      const contact = `${change.mapping}\u0000${change.key}`;
      const w = working.get(contact)!;
      let row: Row | null;
      if (change.kind === 'delete') row = null;
      else {
        row = { ...change.row };
        // An unchanged TOASTed column arrives as undefined: keep the value last seen (loaded, or earlier in
        // this batch). One never seen stays undefined: the payload leaves that field as Wooxy has it. An insert
        // too can lack a column: one decoded with the publication as it was before a mapping started to read
        // it (queued while the connector was stopped); the stored value, when a snapshot chunk read it, is the
        // row's (the chunk's read is the newer one), and is kept rather than lost.
        for (const [col, v] of Object.entries(row)) if (v === undefined && w.row && col in w.row) row[col] = w.row[col];
      }
      w.row = row;
      w.touched = true;
      w.lsn = change.lsn;
      w.xid = change.xid ?? null;
      const d = desiredOf(mapper, row);
      if (!d.ok) {
        dead.set(contact, { mapping: change.mapping, key: change.key, op: change.kind === 'insert' ? 'add' : 'update', payload: row, code: 'ROW_INVALID', message: d.message });
        w.keepDesired = !w.desiredKnown; // the contact keeps its last valid desired state
        continue;
      }
      dead.delete(contact);
      w.desired = d.desired;
      w.desiredKnown = true;
      w.keepDesired = false;
    }

    for (const { mapping, lsn, xid } of truncated) {
      const removals = await truncateMapping(this.ctx, trx, mapping, lsn, xid);
      outcome.enqueued += removals;
      outcome.truncated.push({ mapping, removals });
    }

    const records: StateRecord[] = [];
    for (const [key, w] of working) {
      if (!w.touched) continue;
      const [m, k] = key.split('\u0000') as [string, string];
      records.push({ m, k, r: w.row, d: w.desired, kd: w.keepDesired, l: w.lsn, x: w.xid });
    }
    if (records.length > 0) {
      const n = await applyChanges(this.ctx, trx, records);
      outcome.enqueued += n;
      outcome.unchanged = records.length - n;
    }
    // The removals just queued are judged with them: after the outbox writes, before the dead letters (the lock order).
    if (this.guard) outcome.holds = await this.guard.judgeWrite(trx, removalsOf(truncated, records));

    outcome.invalid = [...dead.values()];
    outcome.deadLettered = outcome.invalid.length;
    await upsertDeadLetters(this.ctx, trx, outcome.invalid);

    if (durableLsn) await recordDurableLsn(this.ctx, trx, this.slot, durableLsn);
    failpoint('outbox.before-commit');
    return outcome;
  }

  /** Current state of every contact the batch touches, in one query. */
  private async load(trx: Trx, changes: readonly RowChange[]): Promise<Map<string, Working>> {
    const working = new Map<string, Working>();
    // Only an update that omits an unchanged TOASTed column needs the stored row; everything else is
    // computed from the change, and unchanged payloads are filtered in SQL. So the common batch reads nothing.
    const needed = new Map<string, Set<string>>();
    for (const c of changes) {
      if (c.kind === 'truncate') continue;
      const key = `${c.mapping}\u0000${c.key}`;
      if (!working.has(key)) working.set(key, { row: null, desired: null, desiredKnown: false, keepDesired: false, touched: false, lsn: c.lsn, xid: null });
      if (c.kind === 'update' && Object.values(c.row).some((v) => v === undefined)) {
        const keys = needed.get(c.mapping) ?? new Set<string>();
        keys.add(c.key);
        needed.set(c.mapping, keys);
      }
    }
    for (const [mapping, keys] of needed) {
      for (const r of await loadStates(this.ctx, trx, mapping, [...keys])) {
        const w = working.get(`${mapping}\u0000${r.source_key}`)!;
        w.row = r.row;
        w.desired = r.desired;
        w.desiredKnown = true;
      }
    }
    return working;
  }
}

/** The mappings this write may have queued removals for: truncated ones whole, else the contacts it took out of the list. */
function removalsOf(truncated: ReadonlyArray<{ mapping: string }>, records: readonly StateRecord[]): Map<string, { keys: string[] | 'all'; truncated: boolean }> {
  const queued = new Map<string, { keys: string[] | 'all'; truncated: boolean }>();
  for (const { mapping } of truncated) queued.set(mapping, { keys: 'all', truncated: true });
  for (const r of records) {
    if (r.d !== null || r.kd) continue;
    const q = queued.get(r.m) ?? { keys: [], truncated: false };
    if (q.keys !== 'all') q.keys.push(r.k);
    queued.set(r.m, q);
  }
  return queued;
}
