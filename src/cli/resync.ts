import type { Command } from 'commander';
import { loadConfig } from '../config/loader.js';
import { CdcError, isCdcError } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { formatOutcome, progressReporter } from '../snapshot/report.js';
import { runSnapshot } from '../snapshot/runner.js';
import { openSnapshotSession, parseChunkSize, selectMappings, stopOnSignal } from '../snapshot/session.js';
import { previewCommand } from './preview.js';

/** SQLSTATE classes that mean the predicate itself is wrong (syntax, names, types, a write in READ ONLY). */
const BAD_PREDICATE = /^(42|22|25006)/;

/**
 * `wooxy-cdc resync`: re-reads the rows of one mapping (those matching --where) and makes delivery send each
 * contact again, even one whose payload Wooxy already has.
 *
 * Trust model of --where: it is SQL from the operator, pasted into `SELECT … WHERE (<predicate>) AND key >
 * cursor`, with the connector's own database role. Anyone who can run this command can read the config and
 * its credentials, so it is not a privilege boundary; the guards are against accidents, and keep the
 * README's promise that a resync changes nothing but the outbox: before anything is read, the predicate must
 * parse as one expression (it cannot close the parenthesis around it and widen the query) that calls only
 * IMMUTABLE or STABLE functions and operators (src/snapshot/predicate.ts); it then runs in READ ONLY
 * transactions, as one statement of the extended protocol (no `;`-separated second statement), on its own
 * lines (a trailing `--` comment cannot swallow the cursor condition). --dry-run runs the same checks and
 * reads, and only counts what the resync would send (src/snapshot/preview.ts): a preview of what a predicate
 * selects before anything is queued.
 */
export function register(program: Command): void {
  program
    .command('resync')
    .description('send the contacts of a mapping again (those whose rows match --where), even when unchanged')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .requiredOption('-m, --mapping <name>', 'the mapping to resync')
    .option('-w, --where <sql>', "SQL predicate on the source table, e.g. \"updated_at > now() - interval '1 day'\" (read-only)")
    .option('--chunk-size <rows>', 'rows per transaction (default: snapshot.chunkSize)')
    .option('--dry-run', 'count what would be added, updated, removed, unchanged or dead-lettered, with examples; queue nothing')
    .option('--examples <n>', '--dry-run: examples shown of each (default 3)')
    .option('--json', '--dry-run: print JSON (for scripts)')
    .action(async (opts: { config: string; mapping: string; where?: string; chunkSize?: string; dryRun?: boolean; examples?: string; json?: boolean }) => {
      const config = await loadConfig(opts.config, process.env, { withoutWooxy: true });
      const log = createLogger({ level: config.log.level });
      const chunkSize = parseChunkSize(opts.chunkSize, config.snapshot.chunkSize);
      if (opts.where !== undefined && opts.where.trim() === '') throw new CdcError('USAGE_INVALID', '--where is empty');
      const badWhere = (e: unknown) => {
        const code = (e as { code?: unknown }).code;
        if (isCdcError(e, 'USAGE_INVALID') || (typeof code === 'string' && BAD_PREDICATE.test(code))) {
          throw new CdcError('USAGE_INVALID', `--where ${JSON.stringify(opts.where)}: ${(e as Error).message}`, { cause: e });
        }
        throw e;
      };
      if (opts.dryRun) {
        // Not openSnapshotSession: it migrates and creates the slot and publication, which a preview must not.
        await previewCommand({ config, log, mode: 'resync', mapping: opts.mapping, chunkSize, where: opts.where, examples: opts.examples, json: opts.json }).catch(badWhere);
        return;
      }
      if (opts.json || opts.examples !== undefined) throw new CdcError('USAGE_INVALID', '--json and --examples go with --dry-run');
      const session = await openSnapshotSession(config, log);
      const stop = stopOnSignal(log);
      try {
        const [mapper] = selectMappings(session.mappers, opts.mapping);
        const outcome = await runSnapshot(
          { handle: session.handle, mapper: mapper!, writer: session.writer, chunkSize, log, progress: progressReporter(process.stderr, log, config.snapshot.progressIntervalMs), signal: stop.signal },
          { kind: 'resync', where: opts.where },
        ).catch(badWhere);
        if (!outcome.finished) throw new CdcError('SNAPSHOT_INTERRUPTED', `resync of ${mapper!.name} stopped after ${outcome.rows} rows; run it again to finish`);
        process.stdout.write(`${formatOutcome('resync', outcome)}\n`);
      } finally {
        stop.dispose();
        await session.close();
      }
    });
}
