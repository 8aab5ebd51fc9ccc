import type { Command } from 'commander';
import { loadConfig } from '../config/loader.js';
import { Connector } from '../connector.js';
import { createLogger } from '../observability/logger.js';

export function register(program: Command): void {
  program
    .command('run')
    .description('run the connector: replication → outbox → Wooxy, until SIGTERM')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--no-migrate', 'do not apply pending migrations at start (fail instead when the schema is behind)')
    .action(async (opts: { config: string; migrate: boolean }) => {
      const config = await loadConfig(opts.config);
      const log = createLogger({ level: config.log.level });
      const connector = new Connector({ config, log, migrate: opts.migrate });
      let signals = 0;
      const done = new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          if (signals > 1) {
            log.warn({ signal }, 'second signal: exiting without draining');
            process.exit(130);
          }
          log.info({ signal }, 'stopping: draining what is in flight (send the signal again to force)');
          void connector.stop().then(resolve, resolve);
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
      await connector.start();
      log.info({ mappings: connector.mappers.map((m) => m.name) }, 'wooxy-cdc running');
      await done;
      log.info('stopped');
    });
}
