import type { Command } from 'commander';
import { loadConfig } from '../config/loader.js';

export function register(program: Command): void {
  program
    .command('validate-config')
    .description('check a configuration file (and the environment it reads); exit 2 naming each bad path')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .action(async (opts: { config: string }) => {
      const config = await loadConfig(opts.config);
      const tables = config.mappings.map((m) => `${m.name} (${m.schema}.${m.tableName} → list ${m.contactListId})`);
      process.stdout.write(`${opts.config}: valid; ${config.mappings.length} mapping(s): ${tables.join(', ')}\n`);
    });
}
