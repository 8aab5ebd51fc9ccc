import type { MappingConfig } from '../config/schema.js';
import { ErrorCodes } from '../errors.js';
import { BackgroundLoop } from '../lib/loop.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { takeWriterTurn } from '../store/capture.js';
import type { StoreContext } from '../store/context.js';
import {
  countWaiting,
  liftHold,
  measureWaiting,
  parkKeys,
  readGuard,
  recountSynced,
  refreshHeldCount,
  setHold,
  unparkUnheld,
} from '../store/guard.js';
import { transaction, type Fence, type Trx } from '../store/tx.js';

/**
 * The mass-removal guard. A TRUNCATE, a DELETE without a WHERE or a filter changed by mistake would empty a
 * Wooxy list within seconds; removals cannot be undone there (the contact's history and consents go with
 * it). So when the removals waiting for a mapping are more than `minRemovals` and more than `removePercent`
 * of its synced contacts, they are held until an operator approves or discards them; the mapping's adds and
 * updates go on. The rules of a hold (what counts, how a claim skips held removals, how a decision ends one)
 * are in src/store/guard.ts.
 *
 * Judged where removals are queued: the stream's and the snapshots' writers judge, in their own transaction,
 * each mapping they queued removals for, so a hold commits with its removals and delivery never sees the
 * removals first. The leader reviews every mapping on the monitor's interval as well, for removals queued
 * elsewhere (a retried dead letter), to keep the held count current, and to lift a hold nothing is left in.
 */

export interface GuardSettings {
  /** Percent of the mapping's synced contacts; 0 turns the guard off. */
  removePercent: number;
  /** Contacts; 0 turns the guard off. */
  minRemovals: number;
}

/** Either limit at 0 turns the guard off for the mapping (0 as "no minimum" would hold a single removal of a tiny list). */
export function guardOff(s: GuardSettings): boolean {
  return s.removePercent <= 0 || s.minRemovals <= 0;
}

/** A mass removal: more waiting removals than both limits allow. Integer arithmetic, so 20 of 200 at 10% is not more. */
export function exceedsGuard(waiting: number, synced: number, s: GuardSettings): boolean {
  if (guardOff(s)) return false;
  return waiting > s.minRemovals && waiting * 100 > s.removePercent * synced;
}

/**
 * A count of waiting removals at or below this is never a mass removal, so counting stops one above it.
 * Rounded down (a fractional percent can land a hair under a whole number): a count above it only earns an
 * exact count, which exceedsGuard then judges.
 */
export function removalAllowance(synced: number, s: GuardSettings): number {
  return Math.max(s.minRemovals, Math.floor((s.removePercent * synced) / 100 - 1e-9));
}

/**
 * What most likely queued the removals: a TRUNCATE the writer saw, rows a reconciliation found gone, else
 * deletes or rows leaving the filter.
 */
export function likelyCause(measured: { waiting: number; deleted: number }, table?: string, origin?: 'truncate' | 'sweep'): string {
  if (origin === 'truncate') return `TRUNCATE of ${table}`;
  if (origin === 'sweep') return `a reconciliation found the rows of ${measured.deleted} contact(s) gone from ${table} (deleted or truncated while the stream could not see it)`;
  const filtered = measured.waiting - measured.deleted;
  const parts: string[] = [];
  if (measured.deleted > 0) parts.push(`${measured.deleted} row(s) deleted at the source (a DELETE without a WHERE, a table emptied or restored?)`);
  if (filtered > 0) parts.push(`${filtered} row(s) no longer match the mapping's filter (a changed filter, or an UPDATE of a filtered column?)`);
  return parts.join('; ') || 'unknown';
}

export type GuardEvent =
  | { kind: 'held'; mapping: string; contacts: number; synced: number; cause: string }
  | { kind: 'lifted'; mapping: string; contacts: number; reason: 'none-waiting' | 'off' };

/**
 * Per mapping, what a write queued that may be removals: some keys, or every contact (a TRUNCATE); `swept`:
 * a reconciliation's sweep queued them.
 */
export type QueuedRemovals = ReadonlyMap<string, { keys: readonly string[] | 'all'; truncated: boolean; swept?: boolean }>;

export interface RemovalGuardOptions {
  ctx: StoreContext;
  /** The leader's term, for the review's transactions; null in a command (snapshot, resync). */
  fence: Fence | null;
  mappings: ReadonlyArray<Pick<MappingConfig, 'name' | 'schema' | 'tableName' | 'contactListId' | 'guard'>>;
  log: Logger;
  metrics?: Metrics;
  /** How often the leader reviews every mapping (postgres.monitorIntervalMs). */
  intervalMs?: number;
}

export class RemovalGuard {
  private readonly mappings: ReadonlyMap<string, RemovalGuardOptions['mappings'][number]>;
  private readonly loop: BackgroundLoop;

  constructor(private readonly opts: RemovalGuardOptions) {
    this.mappings = new Map(opts.mappings.map((m) => [m.name, m]));
    this.loop = new BackgroundLoop({ name: 'removal guard', log: opts.log, intervalMs: opts.intervalMs ?? 5_000, tick: () => this.review() });
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /**
   * In a writer's transaction, after its outbox writes and under its writer turn: judges each mapping the
   * write queued removals for. The events are for `report`, once the transaction has committed.
   */
  async judgeWrite(trx: Trx, queued: QueuedRemovals): Promise<GuardEvent[]> {
    const events: GuardEvent[] = [];
    for (const [mapping, q] of [...queued].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const e = await this.judge(trx, mapping, q);
      if (e) events.push(e);
    }
    return events;
  }

  /** Under the writer turn: sets, keeps or lifts the mapping's hold. */
  private async judge(db: Trx, mapping: string, hint: { keys?: readonly string[] | 'all'; truncated?: boolean; swept?: boolean } = {}): Promise<GuardEvent | null> {
    const m = this.mappings.get(mapping);
    if (!m) return null;
    const { ctx } = this.opts;
    const s = m.guard;
    const g = await readGuard(ctx, db, mapping);
    if (g.held) {
      if (guardOff(s)) {
        await liftHold(ctx, db, mapping);
        return { kind: 'lifted', mapping, contacts: g.heldCount, reason: 'off' };
      }
      if ((await countWaiting(ctx, db, mapping, g.approvedLsn, { limit: 1 })) === 0) {
        await liftHold(ctx, db, mapping);
        return { kind: 'lifted', mapping, contacts: 0, reason: 'none-waiting' };
      }
      if (hint.keys) await parkKeys(ctx, db, mapping, g.approvedLsn, hint.keys);
      return null;
    }
    if (guardOff(s)) return null;
    // The common case, a few deletes, costs one look at minRemovals + 1 entries at most.
    if ((await countWaiting(ctx, db, mapping, g.approvedLsn, { limit: s.minRemovals + 1 })) <= s.minRemovals) return null;
    const synced = g.syncedCount ?? (await recountSynced(ctx, db, mapping));
    const allowance = removalAllowance(synced, s);
    if ((await countWaiting(ctx, db, mapping, g.approvedLsn, { limit: allowance + 1 })) <= allowance) return null;
    const measured = await measureWaiting(ctx, db, mapping, g.approvedLsn);
    if (!exceedsGuard(measured.waiting, synced, s)) return null;
    const cause = likelyCause(measured, `${m.schema}.${m.tableName}`, hint.truncated ? 'truncate' : hint.swept ? 'sweep' : undefined);
    await setHold(ctx, db, mapping, { count: measured.waiting, synced, cause, above: g.approvedLsn });
    return { kind: 'held', mapping, contacts: measured.waiting, synced, cause };
  }

  /**
   * The leader's round. Looks without locks first; only a change of hold takes the writer turn (and judges
   * again under it), so a held million removals costs the stream no wait, only this count.
   */
  async review(): Promise<void> {
    const { ctx, metrics } = this.opts;
    for (const [mapping, m] of this.mappings) {
      const g = await readGuard(ctx, ctx.db, mapping);
      let event: GuardEvent | null = null;
      let held = 0;
      if (g.held) {
        held = (await measureWaiting(ctx, ctx.db, mapping, g.approvedLsn)).waiting;
        if (held === 0 || guardOff(m.guard)) event = await this.judgeAlone(mapping);
        else await refreshHeldCount(ctx, mapping, held);
      } else if (!guardOff(m.guard) && (await countWaiting(ctx, ctx.db, mapping, g.approvedLsn, { limit: m.guard.minRemovals + 1 })) > m.guard.minRemovals) {
        event = await this.judgeAlone(mapping);
      }
      if (event) this.report([event]);
      else metrics?.removalsHeld.set({ mapping }, held);
    }
    // After the judging: removals an approval left parked (not yet durable then) are due unless held again.
    await unparkUnheld(ctx);
  }

  private judgeAlone(mapping: string): Promise<GuardEvent | null> {
    const { ctx, fence } = this.opts;
    return transaction(ctx, fence, async (trx) => {
      await takeWriterTurn(ctx, trx);
      return this.judge(trx, mapping);
    });
  }

  /** Says what committed holds mean: one error line per hold, with the count, the likely cause and what to run. */
  report(events: readonly GuardEvent[]): void {
    const { log, metrics } = this.opts;
    for (const e of events) {
      const m = this.mappings.get(e.mapping);
      if (e.kind === 'held') {
        metrics?.removalsHeld.set({ mapping: e.mapping }, e.contacts);
        log.error(
          { code: ErrorCodes.REMOVALS_HELD, mapping: e.mapping, contacts: e.contacts, synced: e.synced, cause: e.cause, removePercent: m?.guard.removePercent, minRemovals: m?.guard.minRemovals },
          holdMessage(e, m),
        );
      } else {
        metrics?.removalsHeld.set({ mapping: e.mapping }, 0);
        if (e.reason === 'off') log.warn({ mapping: e.mapping, contacts: e.contacts }, `the mass-removal guard of mapping ${e.mapping} is off (removePercent or minRemovals is 0): its ${e.contacts} held removal(s) are sent`);
        else log.info({ mapping: e.mapping }, `removals of mapping ${e.mapping} no longer held: none is waiting any more (the rows are back, or the contacts gone)`);
      }
    }
  }
}

/** The hold's error line, which the CLI's list repeats. */
export function holdMessage(e: { mapping: string; contacts: number; synced: number; cause: string }, m?: Pick<MappingConfig, 'contactListId' | 'guard'>): string {
  const share = e.synced > 0 ? `${Math.round((100 * e.contacts) / e.synced)}% of its ${e.synced} synced contact(s)` : 'while it has no synced contacts';
  const limits = m ? ` (the guard holds more than ${m.guard.minRemovals} and more than ${m.guard.removePercent}%)` : '';
  return (
    `removals of mapping ${e.mapping} held: ${e.contacts} contact(s) would leave Wooxy list ${m?.contactListId ?? '?'}, ${share}${limits}; ` +
    `likely cause: ${e.cause}. Adds and updates go on. Review: wooxy-cdc removals list --mapping ${e.mapping} --config FILE, then approve or discard`
  );
}
