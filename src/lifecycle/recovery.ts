import { sql } from 'kysely';
import { BackgroundLoop, errorText } from '../lib/loop.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { StopNotice } from '../source/relations.js';
import { prepareSource, qualified, type SourceBaseline, type SourceSetup } from '../source/setup.js';
import { classifyStreamFailure, createSql, dropSql, type SourceFault } from '../source/slot.js';
import type { StoreContext } from '../store/context.js';
import { recordEvent, recordMapping, recordStop, requestReconcile } from '../store/lifecycle.js';
import { withRetries } from '../store/retry.js';
import { fingerprintOf } from './fingerprint.js';
import { columnChanges } from './startup.js';
import { transaction, type Fence } from '../store/tx.js';

export interface RecoveryOptions {
  ctx: StoreContext;
  fence: Fence;
  setup: Omit<SourceSetup, 'durableLsn'>;
  mappers: readonly Mapper[];
  baseline: SourceBaseline;
  log: Logger;
  metrics: Metrics;
  durableLsn: () => Promise<string>;
  /** Reconciliations were asked for: the snapshot service should look now. */
  onReconcile: () => void;
  /** A mapping stopped from outside the stream (its table dropped): the stream must skip its changes. */
  onStopped: (mapping: string, reason: string) => void;
  /** The pipeline must be built again (a mapped table was created again). */
  onRestart: (reason: string) => void;
  /** The mappings the stream has stopped now. */
  stopped: () => ReadonlyMap<string, string>;
}

const REMEDY: Record<SourceFault, (slot: string, publication: string) => string> = {
  'slot-missing': (slot) => `${createSql(slot)};`,
  'slot-invalidated': (slot) => `${dropSql(slot)}; ${createSql(slot)};`,
  'publication-missing': (slot, publication) => `CREATE PUBLICATION "${publication}" FOR TABLE …; ${dropSql(slot)}; ${createSql(slot)};`,
};

const WHAT: Record<SourceFault, string> = {
  'slot-missing': 'the replication slot was dropped',
  'slot-invalidated': 'the replication slot was invalidated (it retained more WAL than max_slot_wal_keep_size)',
  'publication-missing': 'the publication was dropped',
};

/**
 * The source's faults while the connector runs, never papered over: a dropped or invalidated slot, a dropped
 * publication, a dropped (or dropped and re-created) mapped table, a mapping stopped by a schema change. Each
 * is named (an error code, a remedy in the log, a metric, an event for `status`), remembered, and — where
 * postgres.autoCreate allows — repaired, then reconciled: never restarted silently from "now".
 */
export class SourceRecovery {
  private readonly faults = new Set<SourceFault>();
  private readonly tableNotes = new Set<string>();

  constructor(private readonly opts: RecoveryOptions) {}

  /** A mapping stopped on a schema change: remember where and why (a restart reconciles it once it runs). */
  mappingStopped(notice: StopNotice): void {
    void withRetries(() => recordStop(this.opts.ctx, this.opts.fence, notice), { attempts: 10, connection: true }).catch((e: unknown) =>
      this.opts.log.error({ mapping: notice.mapping, error: errorText(e) }, 'could not record the stop of a mapping; it is still stopped in this process'),
    );
  }

  /**
   * The stream could not read the slot. Returns the named error and its remedy for the log when it is one of
   * the source's faults; with autoCreate, repairs it first (the publication created, the slot created again)
   * and asks for every mapping's reconciliation.
   */
  async streamFailed(e: unknown): Promise<{ code: string; message: string } | null> {
    const { setup, metrics, log } = this.opts;
    const fault = classifyStreamFailure(e, setup.slot, setup.publication);
    if (fault === null) return null;
    metrics.sourceFault.set({ fault }, 1);
    const first = !this.faults.has(fault);
    this.faults.add(fault);
    if (!setup.autoCreate) {
      const message = `${WHAT[fault]}: the stream cannot go on, and postgres.autoCreate is false. Run: ${REMEDY[fault](setup.slot, setup.publication)} — the connector then reconciles every mapping by itself`;
      if (first) await recordEvent(this.opts.ctx, this.opts.ctx.db, { level: 'error', code: codeOf(fault), mapping: null, message }).catch(() => undefined);
      return { code: codeOf(fault), message };
    }
    const durableLsn = await this.opts.durableLsn();
    const again = await prepareSource({ ...setup, durableLsn: durableLsn === '0/0' ? null : durableLsn });
    metrics.sourceFault.set({ fault }, 0);
    this.faults.delete(fault);
    if (again.slot.kind === 'gap') {
      const { code, reason } = again.slot;
      metrics.sourceGaps.inc({ code });
      await transaction(this.opts.ctx, this.opts.fence, async (trx) => {
        await recordEvent(this.opts.ctx, trx, { level: 'error', code, mapping: null, message: reason });
        for (const m of this.opts.mappers) if (!again.stops.has(m.name)) await requestReconcile(this.opts.ctx, trx, m.name, `${code}: ${reason}`);
      });
      this.opts.onReconcile();
      log.error({ code, createdAt: again.slot.createdAt }, `${reason}: the changes made meanwhile were never streamed; the slot was created again, and every mapping is reconciled`);
    }
    return { code: codeOf(fault), message: `${WHAT[fault]}; repaired (postgres.autoCreate): streaming again from the new slot, every mapping reconciled` };
  }

  /**
   * Every interval, each mapped table is looked up by name: one gone stops its mapping (remembered, named, its
   * contacts left as they are until it comes back); one dropped and created again — a new oid — makes the
   * pipeline start over (with autoCreate, which publishes it again), and the start reconciles the mapping,
   * removing the contacts of rows gone.
   */
  watchTables(intervalMs: number): BackgroundLoop {
    const loop = new BackgroundLoop({ name: 'mapped table watch', log: this.opts.log, intervalMs, failureLevel: 'debug', tick: () => this.checkTables() });
    loop.start(intervalMs);
    return loop;
  }

  /**
   * The table left the publication (a DROP COLUMN … CASCADE on a listed column does that, silently): its
   * changes no longer reach the stream. Named at once; with autoCreate it is published again and the mapping
   * reconciled (the changes in between were never streamed).
   */
  private async unpublished(m: Mapper, table: string): Promise<void> {
    const { setup, log } = this.opts;
    const note = `${m.name}:unpublished-running`;
    if (this.tableNotes.has(note)) return;
    this.tableNotes.add(note);
    const reason = `table ${table} left publication ${setup.publication} (a DROP … CASCADE of a published column, or ALTER PUBLICATION … DROP TABLE)`;
    if (!setup.autoCreate) {
      log.error(
        { code: 'PG_PUBLICATION_MISSING', mapping: m.name },
        `${reason}: its changes no longer reach the connector, and postgres.autoCreate is false. Its owner runs ALTER PUBLICATION "${setup.publication}" ADD TABLE ${table}, then restart the connector: it reconciles the mapping`,
      );
      await recordEvent(this.opts.ctx, this.opts.ctx.db, { level: 'error', code: 'PG_PUBLICATION_MISSING', mapping: m.name, message: reason }).catch(() => undefined);
      return;
    }
    await transaction(this.opts.ctx, this.opts.fence, (trx) => requestReconcile(this.opts.ctx, trx, m.name, reason));
    log.error({ code: 'PG_PUBLICATION_MISSING', mapping: m.name }, `${reason}: publishing it again and reconciling the mapping`);
    this.opts.onRestart(reason);
  }

  /**
   * A mapped column dropped and added again between two changes never shows in the stream (the next Relation
   * has the column, of the same type) although every row's value is gone; a retype may rewrite values. Both are
   * told by the columns' attnums and types, and reconcile the mapping. A column missing now is the stream's to
   * stop on (at its next change).
   */
  private async checkColumns(m: Mapper, oid: number): Promise<void> {
    const before = this.opts.baseline.identities.get(m.name);
    if (!before || this.stoppedNow(m.name)) return;
    const { rows } = await sql<{ attname: string; attnum: number; atttypid: number }>`
      SELECT attname, attnum, atttypid::int AS atttypid FROM pg_attribute
      WHERE attrelid = ${oid}::oid AND attname = ANY(${Object.keys(before)}::text[]) AND NOT attisdropped`.execute(this.opts.ctx.source);
    const after = Object.fromEntries(rows.map((r) => [r.attname, { attnum: Number(r.attnum), type: Number(r.atttypid) }]));
    const changes = columnChanges(before, after);
    if (changes.length === 0) return;
    this.opts.baseline.identities.set(m.name, { ...before, ...after });
    const reason = changes.join('; ');
    this.opts.log.warn({ mapping: m.name, columns: changes }, `mapping ${m.name}: ${reason}: reconciling`);
    await transaction(this.opts.ctx, this.opts.fence, async (trx) => {
      await requestReconcile(this.opts.ctx, trx, m.name, reason);
      await recordMapping(this.opts.ctx, trx, {
        name: m.name,
        fingerprint: fingerprintOf(m.definition),
        definition: m.definition,
        listId: m.listId,
        tableOid: oid,
        columns: this.opts.baseline.identities.get(m.name) ?? null,
      });
    });
    this.opts.onReconcile();
  }

  private stoppedNow(mapping: string): boolean {
    return this.opts.stopped().has(mapping);
  }

  private async published(m: Mapper): Promise<boolean> {
    const { rows } = await sql<{ ok: boolean }>`
      SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = ${this.opts.setup.publication} AND schemaname = ${m.schema} AND tablename = ${m.table}) AS ok`.execute(this.opts.ctx.source);
    return rows[0]?.ok === true;
  }

  private async checkTables(): Promise<void> {
    const { mappers, baseline, setup, log, metrics } = this.opts;
    for (const m of mappers) {
      const table = qualified(m);
      const { rows } = await sql<{ oid: string | null }>`SELECT to_regclass(${table})::oid::text AS oid`.execute(this.opts.ctx.source);
      const oid = rows[0]?.oid == null ? null : Number(rows[0].oid);
      const known = baseline.oids.get(m.name) ?? null;
      if (oid === known) {
        if (oid !== null && !(await this.published(m))) await this.unpublished(m, table);
        else if (oid !== null) await this.checkColumns(m, oid);
        continue;
      }
      if (oid === null) {
        if (this.tableNotes.has(`${m.name}:dropped`)) continue;
        this.tableNotes.add(`${m.name}:dropped`);
        const reason = `table ${table} was dropped`;
        this.opts.onStopped(m.name, reason);
        metrics.mappingErrors.set({ mapping: m.name }, 1);
        log.error(
          { code: 'MAPPING_TABLE_DROPPED', mapping: m.name },
          `mapping ${m.name} stopped: ${reason}. Its contacts stay in Wooxy as they are; when a table of that name exists again the connector publishes it${setup.autoCreate ? '' : ' (after ALTER PUBLICATION … ADD TABLE by its owner)'} and reconciles the mapping, removing the contacts of rows gone`,
        );
        this.mappingStopped({ mapping: m.name, code: 'MAPPING_TABLE_DROPPED', reason, lsn: await this.opts.durableLsn() });
        continue;
      }
      // A table of that name exists again (or for the first time, after a stop at start).
      if (this.tableNotes.has(`${m.name}:recreated`)) continue;
      if (!setup.autoCreate && !(await this.published(m))) {
        if (!this.tableNotes.has(`${m.name}:unpublished`)) {
          this.tableNotes.add(`${m.name}:unpublished`);
          log.error(
            { code: 'PG_PUBLICATION_MISSING', mapping: m.name },
            `table ${table} of mapping ${m.name} exists again but is not in publication ${setup.publication}, and postgres.autoCreate is false: its owner runs ALTER PUBLICATION "${setup.publication}" ADD TABLE ${table}; the connector then reconciles the mapping`,
          );
        }
        continue;
      }
      this.tableNotes.add(`${m.name}:recreated`);
      log.warn({ mapping: m.name }, `table ${table} of mapping ${m.name} exists again (a new table): the pipeline starts over to publish and reconcile it`);
      this.opts.onRestart(`table ${table} was created again`);
      return;
    }
  }
}

function codeOf(fault: SourceFault): string {
  return CODES[fault];
}

const CODES: Record<SourceFault, string> = { 'slot-missing': 'PG_SLOT_LOST', 'slot-invalidated': 'PG_SLOT_INVALIDATED', 'publication-missing': 'PG_PUBLICATION_MISSING' };
