import type pg from 'pg';
import { CdcError, PgCodes } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { bigIntToLsn, compareLsn, lsnToBigInt, normalizeLsn } from './lsn.js';

/**
 * What became of the slot since the connector last streamed from it. Anything but `intact` and `new` means
 * the stream missed changes: the slot was created again (it had been dropped, or invalidated for retaining
 * too much WAL, or the publication was dropped and its past can no longer be decoded), or it moved past what
 * the connector had made durable (someone advanced or re-created it). The caller reconciles every mapping.
 */
export type SlotOutcome =
  | { kind: 'intact' }
  /** The first start: nothing was streamed before, nothing was missed. */
  | { kind: 'new' }
  | { kind: 'gap'; code: 'SLOT_LOST' | 'SLOT_INVALIDATED' | 'SLOT_AHEAD' | 'PUBLICATION_LOST'; reason: string; createdAt: string | null };

export interface SlotSetup {
  slot: string;
  autoCreate: boolean;
  /** The connector's last durable position on this slot; null when it never streamed from it. */
  durableLsn: string | null;
  /** The publication was created just now: the slot's older WAL cannot be decoded with it. */
  publicationCreated: boolean;
  log: Logger;
}

/** The SQL an operator runs to create the slot, or to drop it (for the remedies in logs and errors). */
export const createSql = (slot: string) => `SELECT pg_create_logical_replication_slot('${slot.replace(/'/g, "''")}', 'pgoutput')`;
export const dropSql = (slot: string) => `SELECT pg_drop_replication_slot('${slot.replace(/'/g, "''")}')`;

interface SlotRow {
  plugin: string;
  database: string;
  current: string;
  active: boolean;
  wal_status: string | null;
  confirmed: string | null;
}

async function readSlot(client: Pick<pg.ClientBase, 'query'>, slot: string): Promise<SlotRow | undefined> {
  const { rows } = await client.query<SlotRow>(
    `SELECT plugin, database, current_database() AS current, active, wal_status, confirmed_flush_lsn::text AS confirmed
     FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return rows[0];
}

/** Creates the slot and returns its starting position; an existing slot of that name is left as it is. */
export async function createSlot(client: Pick<pg.ClientBase, 'query'>, slot: string): Promise<string | null> {
  try {
    const { rows } = await client.query<{ lsn: string }>('SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, $2)', [slot, 'pgoutput']);
    return rows[0] ? normalizeLsn(rows[0].lsn) : null;
  } catch (e) {
    if ((e as { code?: string }).code !== PgCodes.DUPLICATE_OBJECT) throw e;
    return null;
  }
}

/** Drops the slot (waiting up to 10 s for a walsender that still holds it to let go) and creates it again. */
export async function recreateSlot(client: Pick<pg.ClientBase, 'query'>, slot: string): Promise<string | null> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await client.query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      break;
    } catch (e) {
      if ((e as { code?: string }).code !== PgCodes.OBJECT_IN_USE || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return createSlot(client, slot);
}

/**
 * Verifies the slot, or creates it — never silently at "now" when the connector had streamed from it before:
 * a slot that is gone or invalidated then is a gap, created again only with autoCreate (and reported, so every
 * mapping is reconciled), else refused with the SQL and the command to run.
 */
export async function ensureSlot(client: Pick<pg.ClientBase, 'query'>, opts: SlotSetup): Promise<SlotOutcome> {
  const found = await readSlot(client, opts.slot);
  const streamedBefore = opts.durableLsn !== null;
  if (found && (found.plugin !== 'pgoutput' || found.database !== found.current)) {
    throw new CdcError(
      'PG_PREREQUISITE',
      `Replication slot ${opts.slot} uses plugin ${found.plugin} on database ${found.database}; wooxy-cdc needs a pgoutput slot on ${found.current}. Choose another postgres.slot, or drop it.`,
    );
  }
  let gap: { code: 'SLOT_LOST' | 'SLOT_INVALIDATED' | 'SLOT_AHEAD' | 'PUBLICATION_LOST'; reason: string; recreate: boolean } | null = null;
  if (!found && streamedBefore) {
    gap = { code: 'SLOT_LOST', reason: `replication slot ${opts.slot} is gone (the connector had streamed from it up to ${opts.durableLsn})`, recreate: false };
  } else if (found?.wal_status === 'lost') {
    gap = { code: 'SLOT_INVALIDATED', reason: `replication slot ${opts.slot} was invalidated: it retained more WAL than max_slot_wal_keep_size allows`, recreate: true };
  } else if (found && streamedBefore && opts.publicationCreated) {
    gap = { code: 'PUBLICATION_LOST', reason: `the publication was gone and has been created again; slot ${opts.slot} cannot decode its older WAL with it`, recreate: true };
  } else if (found && streamedBefore && found.confirmed !== null && compareLsn(found.confirmed, bigIntToLsn(lsnToBigInt(opts.durableLsn!) + 1n)) > 0) {
    // (pg-logical-replication acknowledges an LSN as that LSN + 1: one byte past the durable position is ours.)
    // Usable as it is, but it moved past what the connector made durable: what lies between was never seen.
    return {
      kind: 'gap',
      code: 'SLOT_AHEAD',
      reason: `replication slot ${opts.slot} is at ${found.confirmed}, past ${opts.durableLsn}, the last position the connector made durable (it was advanced, or dropped and created again)`,
      createdAt: null,
    };
  }
  if (gap) {
    if (!opts.autoCreate) {
      const sql = gap.recreate ? `${dropSql(opts.slot)}; ${createSql(opts.slot)}` : createSql(opts.slot);
      throw new CdcError(
        gap.code === 'SLOT_INVALIDATED' ? 'PG_SLOT_INVALIDATED' : 'PG_SLOT_LOST',
        `${gap.reason}: the changes made since were never streamed, and postgres.autoCreate is false. Run:\n  ${sql};\n` +
          `then start wooxy-cdc again: it reconciles every mapping (or run wooxy-cdc snapshot --reconcile --config FILE).`,
      );
    }
    const createdAt = gap.recreate ? await recreateSlot(client, opts.slot) : await createSlot(client, opts.slot);
    return { kind: 'gap', code: gap.code, reason: gap.reason, createdAt };
  }
  if (!found) {
    if (!opts.autoCreate) {
      throw new CdcError('PG_SLOT_MISSING', `Replication slot ${opts.slot} does not exist and postgres.autoCreate is false; run:\n  ${createSql(opts.slot)};`);
    }
    await createSlot(client, opts.slot);
    opts.log.info({ slot: opts.slot }, 'replication slot created');
    return { kind: 'new' };
  }
  return { kind: 'intact' };
}

/** Why the stream cannot read the slot, when it is one of the source's lifecycle faults; null for anything else. */
export type SourceFault = 'slot-missing' | 'slot-invalidated' | 'publication-missing';

export function classifyStreamFailure(e: unknown, slot: string, publication: string): SourceFault | null {
  const code = (e as { code?: string } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  const detail = (e as { detail?: string } | null)?.detail ?? '';
  if (code === PgCodes.UNDEFINED_OBJECT && message.includes(`replication slot "${slot}" does not exist`)) return 'slot-missing';
  if (code === PgCodes.UNDEFINED_OBJECT && message.includes(`publication "${publication}" does not exist`)) return 'publication-missing';
  if (message.includes(`cannot read from logical replication slot "${slot}"`) || /invalidated/i.test(detail)) return 'slot-invalidated';
  return null;
}
