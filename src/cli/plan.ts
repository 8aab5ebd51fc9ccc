import type { Command } from 'commander';
import { loadConfig } from '../config/loader.js';
import { createLogger } from '../observability/logger.js';
import { parseChunkSize } from '../snapshot/session.js';
import { previewCommand } from './preview.js';

/**
 * `wooxy-cdc plan`: what the table projects to under this configuration against what Wooxy holds as far as
 * the connector knows, per mapping, as counts with examples: the preview of a mapping change (a field
 * added, a filter or a transform changed, another list) before `run` applies it — a changed mapping is
 * reconciled by itself at start. Reads only (src/snapshot/preview.ts): it runs beside the connector, or
 * before it ever ran, and changes nothing.
 */
export function register(program: Command): void {
  program
    .command('plan')
    .description('preview a configuration: what each mapping would add, update, remove or dead-letter against what Wooxy holds')
    .requiredOption('-c, --config <file>', 'YAML configuration file (the one to preview)')
    .option('-m, --mapping <name>', 'only this mapping (default: all)')
    .option('--examples <n>', 'examples shown of each change (default 3)')
    .option('--chunk-size <rows>', 'rows per read (default: snapshot.chunkSize)')
    .option('--json', 'print JSON (for scripts)')
    .action(async (opts: { config: string; mapping?: string; examples?: string; chunkSize?: string; json?: boolean }) => {
      const config = await loadConfig(opts.config, process.env, { withoutWooxy: true });
      const log = createLogger({ level: config.log.level });
      const chunkSize = parseChunkSize(opts.chunkSize, config.snapshot.chunkSize);
      await previewCommand({ config, log, mode: 'plan', mapping: opts.mapping, chunkSize, examples: opts.examples, json: opts.json });
    });
}
