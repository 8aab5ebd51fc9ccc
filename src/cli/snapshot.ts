import type { Command } from 'commander';
import { loadConfig } from '../config/loader.js';
import { CdcError } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { formatOutcome, progressReporter } from '../snapshot/report.js';
import { runSnapshot } from '../snapshot/runner.js';
import { storeContext } from '../store/context.js';
import { openSnapshotSession, parseChunkSize, selectMappings, stopOnSignal } from '../snapshot/session.js';
import { previewCommand } from './preview.js';

/**
 * `wooxy-cdc snapshot`: reads every row of the mapping(s) again from the first key, whatever an earlier
 * snapshot did, through the same outbox as the stream (a row whose contact is unchanged queues nothing).
 * With --reconcile it then also queues the removal of every contact whose row is gone (a sweep of the
 * contact states, in chunks): after a lost slot, a stopped mapping, rows deleted while nothing streamed.
 * Runs beside `wooxy-cdc run`, which sends what it queues once its stream passes each chunk's watermark.
 * With --dry-run it only counts what it would do (src/snapshot/preview.ts), changing nothing.
 */
export function register(program: Command): void {
  program
    .command('snapshot')
    .description('(re)read every row of the mapped table(s) into the outbox, beside the running connector')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('-m, --mapping <name>', 'only this mapping (default: all)')
    .option('--chunk-size <rows>', 'rows per transaction (default: snapshot.chunkSize)')
    .option('--reconcile', 'also remove the contacts whose rows are gone or no longer pass the filter')
    .option('--dry-run', 'count what would be added, updated, removed, unchanged or dead-lettered, with examples; queue nothing')
    .option('--examples <n>', '--dry-run: examples shown of each (default 3)')
    .option('--json', '--dry-run: print JSON (for scripts)')
    .action(async (opts: { config: string; mapping?: string; chunkSize?: string; reconcile?: boolean; dryRun?: boolean; examples?: string; json?: boolean }) => {
      const config = await loadConfig(opts.config, process.env, { withoutWooxy: true });
      const log = createLogger({ level: config.log.level });
      const chunkSize = parseChunkSize(opts.chunkSize, config.snapshot.chunkSize);
      if (opts.dryRun) {
        // Not openSnapshotSession: it migrates and creates the slot and publication, which a preview must not.
        await previewCommand({ config, log, mode: 'snapshot', mapping: opts.mapping, chunkSize, sweep: opts.reconcile === true, examples: opts.examples, json: opts.json });
        return;
      }
      if (opts.json || opts.examples !== undefined) throw new CdcError('USAGE_INVALID', '--json and --examples go with --dry-run');
      const session = await openSnapshotSession(config, log);
      const stop = stopOnSignal(log);
      try {
        for (const mapper of selectMappings(session.mappers, opts.mapping)) {
          const outcome = await runSnapshot(
            {
              handle: session.handle,
              mapper,
              writer: session.writer,
              chunkSize,
              log,
              progress: progressReporter(process.stderr, log, config.snapshot.progressIntervalMs),
              signal: stop.signal,
              // Beside a running connector, a reconciliation waits for its stream to catch up first.
              catchUp: { ctx: storeContext(session.handle), slot: config.postgres.slot, log, streamRuns: false },
            },
            { kind: 'snapshot', restart: true, reconcile: opts.reconcile === true, reason: opts.reconcile ? 'wooxy-cdc snapshot --reconcile' : 'wooxy-cdc snapshot' },
          );
          if (!outcome.finished) {
            throw new CdcError('SNAPSHOT_INTERRUPTED', `snapshot of ${mapper.name} stopped after ${outcome.rows} rows; wooxy-cdc run resumes it, wooxy-cdc snapshot starts it over`);
          }
          process.stdout.write(`${formatOutcome('snapshot', outcome)}\n`);
        }
      } finally {
        stop.dispose();
        await session.close();
      }
    });
}
