import type { Config } from '../config/schema.js';
import { vendorCheck } from '../mapping/vendor-check.js';
import { createDb, dbOptions, type DbHandle } from '../db/index.js';
import { migrate } from '../db/migrator.js';
import { CdcError } from '../errors.js';
import { compileMapping, type Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import { RemovalGuard } from '../outbox/removal-guard.js';
import { SnapshotWriter } from '../outbox/snapshot-writer.js';
import { storeContext } from '../store/context.js';
import { prepareSource } from '../source/setup.js';

export interface SnapshotSession {
  handle: DbHandle;
  mappers: Mapper[];
  writer: SnapshotWriter;
  close: () => Promise<void>;
}

/**
 * What `wooxy-cdc snapshot` and `resync` need, outside a running connector: the connector's schema
 * (migrated, as `run` does), and the slot. The slot must exist before the first chunk is read, or a change
 * committed between the read and the slot's creation would be in neither; prepareSource checks the
 * prerequisites and, with postgres.autoCreate, creates it.
 */
export async function openSnapshotSession(config: Config, log: Logger): Promise<SnapshotSession> {
  const pg = config.postgres;
  const mappers = config.mappings.map((m) => compileMapping(m, vendorCheck));
  const handle = createDb(dbOptions(pg, { purpose: 'snapshot', poolSize: 3 }));
  try {
    const { applied } = await migrate(handle.db, pg.schema);
    if (applied.length) log.info({ schema: pg.schema, applied }, 'migrations applied');
    await prepareSource({ url: pg.url, slot: pg.slot, publication: pg.publication, autoCreate: pg.autoCreate, publishColumns: pg.publishColumns, mappers, log });
  } catch (e) {
    await handle.close();
    throw e;
  }
  const ctx = storeContext(handle);
  // A resync after a filter change can remove as much as a TRUNCATE: its chunks are judged like the stream's writes.
  const guard = new RemovalGuard({ ctx, fence: null, mappings: config.mappings, log });
  const writer = new SnapshotWriter(ctx, new Map(mappers.map((m) => [m.name, m])), null, guard);
  return { handle, mappers, writer, close: () => handle.close() };
}

/**
 * What the dry runs and `plan` need: a pool and the compiled mappings, and nothing of what
 * openSnapshotSession does to prepare a real run — no migration, no slot, no publication — since a preview
 * must leave the database as it found it (src/snapshot/preview.ts).
 */
export function openPreviewSession(config: Config, purpose: string): { handle: DbHandle; mappers: Mapper[]; close: () => Promise<void> } {
  const pg = config.postgres;
  const mappers = config.mappings.map((m) => compileMapping(m, vendorCheck));
  const handle = createDb(dbOptions(pg, { purpose, poolSize: 2 }));
  return { handle, mappers, close: () => handle.close() };
}

/** The mappings a command names (all of them when none is named). */
export function selectMappings(mappers: readonly Mapper[], name: string | undefined): Mapper[] {
  if (name === undefined) return [...mappers];
  const found = mappers.find((m) => m.name === name);
  if (!found) throw new CdcError('USAGE_INVALID', `--mapping ${name}: no such mapping (configured: ${mappers.map((m) => m.name).join(', ')})`);
  return [found];
}

/** AbortSignal raised by the first SIGINT or SIGTERM: the run stops after the chunk in hand. */
export function stopOnSignal(log: Logger): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    log.warn({ signal: sig }, 'stopping after the chunk in hand; what is written stays written');
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

export function parseChunkSize(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new CdcError('USAGE_INVALID', `--chunk-size must be an integer from 1 to 100000, got "${value}"`);
  return n;
}
