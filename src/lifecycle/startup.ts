import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ColumnIdentities, SourceBaseline } from '../source/setup.js';
import type { StoreContext } from '../store/context.js';
import { countContacts, loadMappingRecords, recordEvent, recordMapping, recordStop, requestReconcile, resumeMapping, switchList } from '../store/lifecycle.js';
import { transaction, type Fence } from '../store/tx.js';
import { definitionChanges, fingerprintOf } from './fingerprint.js';

export interface StartupOptions {
  ctx: StoreContext;
  fence: Fence;
  mappers: readonly Mapper[];
  baseline: SourceBaseline;
  /** The last durable position: where a mapping that cannot start is recorded as stopped, if it was not already. */
  durableLsn: string | null;
  log: Logger;
  metrics: Metrics;
}

/**
 * What a start owes to the past, decided before the stream runs and made durable (each decision in one fenced
 * transaction with what caused it), so no restart can forget a gap:
 *   - the slot was lost, invalidated or moved past what was durable: every mapping is reconciled;
 *   - a mapping that cannot run (its table or a column gone, a type it cannot read) is stopped, and the stop
 *     remembered with its position; one that was stopped and runs again is reconciled;
 *   - a changed definition (fingerprint) re-syncs the mapping; a changed list sends its contacts to the new
 *     list (the old one is left as it is); a table dropped and created again is reconciled.
 * Returns the mappings whose reconciliation was asked for.
 */
export async function reconcileAtStart(opts: StartupOptions): Promise<string[]> {
  const { ctx, fence, mappers, baseline, log, metrics } = opts;
  const records = await loadMappingRecords(ctx);
  const reconciling = new Set<string>();

  if (baseline.slot.kind === 'gap') {
    const { code, reason } = baseline.slot;
    metrics.sourceGaps.inc({ code });
    log.error(
      { code, createdAt: baseline.slot.createdAt },
      `${reason}: the changes made meanwhile were never streamed${baseline.slot.createdAt ? `; the slot was created again at ${baseline.slot.createdAt}` : ''}. Every mapping is reconciled (a snapshot that also removes the contacts of rows gone)`,
    );
    await transaction(ctx, fence, async (trx) => {
      await recordEvent(ctx, trx, { level: 'error', code, mapping: null, message: reason });
      for (const m of mappers) {
        if (baseline.stops.has(m.name)) continue;
        await requestReconcile(ctx, trx, m.name, `${code}: ${reason}`);
        reconciling.add(m.name);
      }
    });
  }

  for (const m of mappers) {
    const rec = records.get(m.name);
    const stop = baseline.stops.get(m.name);
    if (stop) {
      metrics.mappingErrors.set({ mapping: m.name }, 1);
      log.error(
        { code: stop.code, mapping: m.name, since: rec?.stop?.at ?? null },
        `mapping ${m.name} cannot run: ${stop.reason}. It stays stopped (the others run, and the slot goes on); fix the table or the mapping and restart: it is then reconciled by itself`,
      );
      await recordStop(ctx, fence, { mapping: m.name, code: stop.code, reason: stop.reason, lsn: opts.durableLsn });
      continue;
    }
    metrics.mappingErrors.set({ mapping: m.name }, 0);
    const fingerprint = fingerprintOf(m.definition);
    const tableOid = baseline.oids.get(m.name) ?? null;
    await transaction(ctx, fence, async (trx) => {
      if (rec) {
        const reasons: string[] = [];
        if (rec.stop) {
          const where = rec.stop.lsn ? ` at ${rec.stop.lsn}` : '';
          const reason = `it had stopped${where} (${rec.stop.reason}) and runs again`;
          await resumeMapping(ctx, trx, m.name, reason);
          await recordEvent(ctx, trx, { level: 'info', code: 'MAPPING_RESUMED', mapping: m.name, message: reason });
          log.info({ mapping: m.name, stoppedAt: rec.stop.lsn, since: rec.stop.at }, `mapping ${m.name} ${reason}: reconciling what was skipped meanwhile`);
          reconciling.add(m.name);
        }
        if (rec.listId !== m.listId) {
          await switchList(ctx, trx, m.name);
          reasons.push(`contactListId ${rec.listId} → ${m.listId}`);
          log.warn(
            { mapping: m.name, from: rec.listId, to: m.listId },
            `mapping ${m.name} now syncs to list ${m.listId}: its contacts are sent there; list ${rec.listId} is left as it is (remove its contacts in Wooxy if they should go)`,
          );
        }
        if (rec.fingerprint !== fingerprint) {
          const changes = definitionChanges(rec.definition, m.definition).join(', ');
          reasons.push(changes);
          log.info({ mapping: m.name, changes }, `mapping ${m.name} changed (${changes}): re-syncing ${await countContacts(ctx, m.name)} contacts`);
        }
        const columns = columnChanges(rec.columns, baseline.identities.get(m.name) ?? null);
        if (columns.length > 0) {
          reasons.push(...columns);
          log.warn({ mapping: m.name, columns }, `mapping ${m.name}: ${columns.join('; ')}: reconciling`);
        }
        if (rec.tableOid !== null && tableOid !== null && rec.tableOid !== tableOid) {
          reasons.push(`table ${m.schema}.${m.table} was dropped and created again`);
          log.warn({ mapping: m.name }, `table ${m.schema}.${m.table} of mapping ${m.name} was dropped and created again: reconciling (the contacts of rows gone are removed)`);
        }
        if (reasons.length > 0) {
          await requestReconcile(ctx, trx, m.name, reasons.join('; '));
          await recordEvent(ctx, trx, { level: 'info', code: 'MAPPING_CHANGED', mapping: m.name, message: reasons.join('; ') });
          reconciling.add(m.name);
        }
      }
      await recordMapping(ctx, trx, { name: m.name, fingerprint, definition: m.definition, listId: m.listId, tableOid, columns: baseline.identities.get(m.name) ?? null });
    });
  }
  return [...reconciling];
}

/**
 * Mapped columns whose values may have changed without a row change the stream could see: a column dropped
 * and added again (same name, new attnum: every value is its default now) or retyped (ALTER … TYPE … USING
 * rewrites values). Compared by name; a column the mapping did not read before is not a change of the table.
 */
export function columnChanges(before: ColumnIdentities | null, after: ColumnIdentities | null): string[] {
  if (!before || !after) return [];
  const out: string[] = [];
  for (const [column, now] of Object.entries(after)) {
    const was = before[column];
    if (!was) continue;
    if (was.attnum !== now.attnum) out.push(`column ${column} was dropped and added again (its values changed without row changes)`);
    else if (was.type !== now.type) out.push(`column ${column} changed type (its values may have been rewritten)`);
  }
  return out;
}
