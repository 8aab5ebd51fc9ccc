import { constants } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('run')
    .description('run the connector: replication → outbox → Wooxy, until SIGTERM (several instances elect one leader)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--no-migrate', 'do not apply pending migrations at start (fail instead when the schema is behind)')
    .action(async (opts: { config: string; migrate: boolean }) => {
      // Loaded here, not at the top: every other command would pay for the whole pipeline's modules.
      const [{ loadConfig }, { Connector }, { createLogger }] = await Promise.all([
        import('../config/loader.js'),
        import('../connector.js'),
        import('../observability/logger.js'),
      ]);
      const config = await loadConfig(opts.config);
      const log = createLogger({ level: config.log.level });
      const connector = new Connector({ config, log, migrate: opts.migrate, configFile: opts.config });

      // First SIGTERM/SIGINT: stop reading, drain, acknowledge what is durable, release the lock, close.
      // A second one exits at once: nothing is lost (the slot resends whatever was not acknowledged).
      let signals = 0;
      let stopped!: Promise<void>;
      const signalled = new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          if (signals > 1) {
            log.warn({ signal }, 'second signal: exiting without draining');
            process.exit(128 + (constants.signals[signal] ?? 1));
          }
          log.info({ signal }, 'stopping: draining what is in flight (send the signal again to force)');
          stopped = connector.stop().catch((e: unknown) => {
            log.error({ err: e }, 'shutdown failed');
            process.exitCode = 1;
          });
          resolve();
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });

      try {
        await connector.start();
      } catch (e) {
        if (signals === 0) throw e;
      }
      if (signals === 0) {
        // V8 sizes its heap for the machine and grows it lazily: without limits (the Docker image sets them),
        // RSS drifts to ~170-230 MB under load although the live heap stays under 64 MB. README: Performance.
        const heapLimitMb = Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
        log.info({ mappings: connector.mappers.map((m) => m.name), role: connector.role, httpPort: connector.httpPort, heapLimitMb }, 'wooxy-cdc running');
      }
      await signalled;
      await stopped;
      log.info('stopped');
      // Everything is closed; should a forgotten handle keep the event loop alive, do not hang an orchestrator.
      setTimeout(() => {
        log.warn('handles still open after shutdown; exiting anyway');
        process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
      }, 2_000).unref();
    });
}
