import type { Config, FilterCondition } from '../config/schema.js';
import { createDb, dbOptions } from '../db/index.js';
import { CdcError } from '../errors.js';
import type { ContactPayload, Mapper, Row } from '../mapping/mapper.js';
import { compileMapping, describeCondition } from '../mapping/mapper.js';
import { vendorCheck } from '../mapping/vendor-check.js';
import { sameJson } from '../outbox/json.js';
import { describeTable, readRowByKey, type TableInfo } from '../snapshot/reader.js';
import { storeContext, type StoreContext } from '../store/context.js';
import type { DeadLetter } from '../store/dead-letters.js';
import { readHistory, type HistoryEntry } from '../store/history.js';
import { findContactKeys, findKeysInHistory, readContact, schemaTables, type ContactRecord, type Lookup, type OutboxEntry, type SchemaTables } from '../store/inspect.js';
import { payloadDiff, type FieldChange } from './diff.js';

/**
 * `wooxy-cdc inspect`: everything the connector knows of one contact, to answer "why is this user (not) in
 * the list?" without SQL. Read-only, from Postgres alone (no Wooxy call, no access token), whether or not the
 * connector runs: the row as it is now, projected by the one mapper (the filter's decision and the transforms'
 * problems included), what Wooxy holds as far as the connector knows, the pending and in-flight entries, the
 * dead letter, and the request history (src/store/history.ts).
 */

export type InspectBy = { key: string } | Lookup;

export interface Inspection {
  mapping: string;
  key: string;
  /** One sentence: in the list or not, in sync or not, and what is under way. */
  summary: string;
  /** The source row now (the mapped columns), read by key. */
  row: { table: string; keyColumn: string; found: boolean; columns: Row | null; error: string | null };
  /** The filter's decision on the row now (null without a row). */
  filter: { passes: boolean; unmet: FilterCondition[] } | null;
  /** The row now through the mapping, whatever the filter says (null without a row). */
  projection: { ok: true; contact: ContactPayload } | { ok: false; problems: string[] } | null;
  /** What the row implies for the list now: the contact, or null (no row, filtered out); unknown when invalid. */
  wants: ContactPayload | null | 'invalid';
  /** What Wooxy holds as far as the connector knows (its last confirmed call), and how the row's contact differs (none out of the list). */
  wooxy: { holds: ContactPayload | null; differences: FieldChange[] };
  /** The connector's own record: the state last captured (it may trail the row while the stream catches up). */
  state: ContactRecord['state'];
  pending: OutboxEntry | null;
  inflight: ContactRecord['inflight'];
  deadLetter: DeadLetter | null;
  /** Newest first; null when no history is kept (history.keepDays 0, or a schema before it). */
  history: HistoryEntry[] | null;
}

export interface InspectReport {
  mapping: string;
  listId: string;
  by: InspectBy;
  /** history.keepDays of this configuration. */
  historyKeepDays: number;
  /** Whether the connector's schema exists (has it ever run against this database?). */
  migrated: boolean;
  contacts: Inspection[];
}

export async function inspect(config: Config, mappingName: string, by: InspectBy): Promise<InspectReport> {
  const spec = config.mappings.find((m) => m.name === mappingName);
  if (!spec) throw new CdcError('USAGE_INVALID', `--mapping ${mappingName}: no such mapping (configured: ${config.mappings.map((m) => m.name).join(', ')})`);
  const mapper = compileMapping(spec, vendorCheck);
  const pg = config.postgres;
  const handle = createDb(dbOptions(pg, { purpose: 'inspect', poolSize: 3 }));
  try {
    const ctx = storeContext(handle);
    const tables = await schemaTables(ctx);
    const table = await describeTable(handle.source.db, mapper).catch((e: unknown) => e as Error);
    const keys = 'key' in by ? [by.key] : await lookupKeys(ctx, tables, mapper, by);
    const contacts: Inspection[] = [];
    for (const key of keys) {
      const found = await inspectOne(ctx, tables, mapper, table, key);
      if ('key' in by || isKnown(found)) contacts.push(found);
    }
    return { mapping: mapper.name, listId: mapper.listId, by, historyKeepDays: config.history.keepDays, migrated: tables.migrated, contacts };
  } finally {
    await handle.close();
  }
}

/** Keys by email or phone: among the contact states first; in the history when no state names it. */
async function lookupKeys(ctx: StoreContext, tables: SchemaTables, mapper: Mapper, lookup: Lookup): Promise<string[]> {
  if (!tables.migrated) return [];
  const path = `fields.${lookup.field}`;
  const columns = [...mapper.columnUses].filter(([, uses]) => uses.some((u) => u.path === path)).map(([c]) => c);
  const keys = await findContactKeys(ctx, mapper.name, lookup, columns);
  if (keys.length > 0 || !tables.history) return keys;
  return findKeysInHistory(ctx, mapper.name, lookup);
}

async function inspectOne(ctx: StoreContext, tables: SchemaTables, mapper: Mapper, table: TableInfo | Error, key: string): Promise<Inspection> {
  const tableName = `${mapper.schema}.${mapper.table}`;
  let row: Row | null = null;
  let error: string | null = null;
  if (table instanceof Error) error = table.message;
  else row = await readRowByKey(ctx.source, mapper, table, key);
  const record: ContactRecord = tables.migrated ? await readContact(ctx, mapper.name, key) : { state: null, pending: null, inflight: null, deadLetter: null };
  const history = tables.history ? await readHistory(ctx, mapper.name, key) : null;
  const projected = row ? mapper.project(row) : null;
  const filter = row ? { passes: mapper.matches(row), unmet: mapper.unmet(row) } : null;
  const wants: Inspection['wants'] = !row || !filter?.passes ? null : projected?.ok ? projected.contact : 'invalid';
  const holds = record.state?.synced ?? null;
  const inspection: Inspection = {
    mapping: mapper.name,
    key,
    summary: '',
    row: { table: tableName, keyColumn: mapper.key, found: row !== null, columns: row, error },
    filter,
    projection: projected && (projected.ok ? { ok: true, contact: projected.contact } : { ok: false, problems: projected.problems }),
    wants,
    // Out of the list, the removal is the difference: every field listed as gone would say nothing more.
    wooxy: { holds, differences: wants === 'invalid' || wants === null ? [] : payloadDiff(holds, wants) },
    state: record.state,
    pending: record.pending,
    inflight: record.inflight,
    deadLetter: record.deadLetter,
    history,
  };
  inspection.summary = summarize(inspection);
  return inspection;
}

/** Whether the connector or the table knows anything of this contact. */
export function isKnown(i: Inspection): boolean {
  return i.row.found || i.state !== null || i.pending !== null || i.inflight !== null || i.deadLetter !== null || (i.history?.length ?? 0) > 0;
}

/**
 * The answer in one sentence, from the parts: whether Wooxy holds the contact (as far as the connector
 * knows), whether that is what the row implies now, and if not, what is under way — a request in flight, a
 * change waiting, a dead letter — or that nothing is, and what would send it.
 */
export function summarize(i: Omit<Inspection, 'summary'>): string {
  const held = i.wooxy.holds !== null;
  const parts: string[] = [held ? 'in the list' : 'not in the list'];
  let settled = false;
  if (i.row.error !== null && !i.row.found) {
    parts.push(`the table cannot be read (${i.row.error})`);
  } else if (i.wants === null) {
    const why = !i.row.found ? `no row of ${i.row.table} has ${i.row.keyColumn} ${i.key}` : `filtered out (${(i.filter?.unmet ?? []).map(describeCondition).join(', ')})`;
    settled = !held;
    parts.push(held ? `but should not be: ${why}` : `as it should be: ${why}`);
  } else if (i.wants === 'invalid') {
    // Its ROW_INVALID dead letter, listed below, says the same.
    const problems = i.deadLetter?.code === 'ROW_INVALID' || !i.projection || i.projection.ok ? '' : `: ${i.projection.problems.join('; ')}`;
    parts.push(`the row is invalid${problems}`);
  } else if (held && sameJson(i.wants, i.wooxy.holds)) {
    settled = true;
    parts.push('in sync');
  } else {
    parts.push(held ? `Wooxy holds another version (${i.wooxy.differences.map((d) => d.field).join(', ')})` : 'but should be');
  }
  const under: string[] = [];
  if (i.inflight) under.push(`request ${i.inflight.requestId} (${i.inflight.sentOp}) is in flight since ${i.inflight.sentAt}`);
  if (i.pending) under.push(`a change waits to be sent${i.pending.attempts > 0 ? ` (attempt ${i.pending.attempts + 1}${i.pending.lastError ? `, last: ${i.pending.lastError}` : ''})` : ''}`);
  if (i.deadLetter) under.push(`dead letter ${i.deadLetter.code}: ${i.deadLetter.message}`);
  if (under.length > 0) parts.push(...under);
  else if (!settled && i.wants !== 'invalid' && i.row.error === null) {
    // A snapshot reads rows: only its --reconcile sweep finds a contact whose row is gone.
    parts.push(`nothing is queued (wooxy-cdc snapshot --mapping ${i.mapping}${i.row.found ? ' would send it' : ' --reconcile would remove it'})`);
  }
  return parts.join('; ');
}
