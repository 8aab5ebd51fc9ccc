import type { Command } from 'commander';
import { loadConfig } from '../config/loader.js';
import { createDb, dbOptions } from '../db/index.js';
import { migrate } from '../db/migrator.js';
import { createLogger } from '../observability/logger.js';

export function register(program: Command): void {
  program
    .command('migrate')
    .description("create or upgrade the connector's own schema (run also applies it at start)")
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .action(async (opts: { config: string }) => {
      const config = await loadConfig(opts.config, process.env, { withoutWooxy: true });
      const log = createLogger({ level: config.log.level });
      const handle = createDb(dbOptions(config.postgres, { purpose: 'migrate', poolSize: 2 }));
      try {
        const { applied, current } = await migrate(handle.db, config.postgres.schema);
        log.info({ schema: config.postgres.schema, applied, current: current.at(-1) }, applied.length ? 'migrations applied' : 'schema up to date');
      } finally {
        await handle.close();
      }
    });
}
