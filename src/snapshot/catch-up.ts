import { sql } from 'kysely';
import type { Logger } from '../observability/logger.js';
import { compareLsn } from '../source/lsn.js';
import { readDurableLsn } from '../store/capture.js';
import type { StoreContext } from '../store/context.js';
import { sleep } from '../lib/sleep.js';
import { WATERMARK_MESSAGE_PREFIX } from '../outbox/snapshot-writer.js';

export interface CatchUpOptions {
  ctx: StoreContext;
  slot: string;
  log: Logger;
  /**
   * True when a stream of this process runs (the pipeline's snapshots): wait whatever the slot says now, as the
   * stream may still be connecting. False for the commands: wait only while some stream holds the slot.
   */
  streamRuns: boolean;
  /** How often the durable LSN is read (default 200 ms). */
  pollMs?: number;
}

/**
 * A reconciliation re-reads rows because something changed them without a change the stream could carry: a
 * column dropped and added again, a retype that rewrote values, a slot lost. The stream may still be replaying
 * changes committed before that (a restart resumes from the durable LSN): applied after a chunk, such a change
 * would write the row's old values back over the chunk's, and no later change would fix them. So before its
 * first read a reconciliation waits until the stream has made durable everything up to where the WAL stood
 * when it started: a logical message written now marks that point, so an idle source passes it at once.
 * Returns the LSN waited for, or null when no stream holds the slot (nothing can replay behind the reads now;
 * a later start checks the columns again and reconciles once more if it must).
 */
export async function waitForStream(opts: CatchUpOptions, mapping: string, signal?: AbortSignal): Promise<string | null> {
  const { ctx, slot, log } = opts;
  const { rows } = await sql<{ lsn: string; active: boolean | null }>`
    SELECT pg_current_wal_lsn()::text AS lsn, (SELECT active FROM pg_replication_slots WHERE slot_name = ${slot}) AS active
    FROM (SELECT pg_logical_emit_message(true, ${WATERMARK_MESSAGE_PREFIX}, ${JSON.stringify({ mapping, catchUp: true })})) AS m`.execute(ctx.source);
  const target = rows[0]!.lsn;
  if (!opts.streamRuns && rows[0]?.active !== true) return null;
  let said = false;
  for (;;) {
    const durable = await readDurableLsn(ctx, slot);
    if (compareLsn(durable, target) >= 0) return target;
    if (!said) {
      log.info({ mapping, durableLsn: durable, waitFor: target }, `reconciliation of ${mapping} waits for the stream to reach ${target}: the changes before it are older than its reads`);
      said = true;
    }
    await sleep(opts.pollMs ?? 200, signal);
  }
}
