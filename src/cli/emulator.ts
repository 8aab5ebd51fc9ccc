import type { Command } from 'commander';
import { CdcError, ErrorCodes } from '../errors.js';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new CdcError(ErrorCodes.CONFIG_INVALID, `--port must be an integer from 0 to 65535, got "${value}"`);
  }
  return port;
}

/**
 * `wooxy-cdc emulator`: a local Wooxy API v3 for the demo, the tests and the benchmarks. Prints its URL and
 * runs until SIGINT or SIGTERM.
 */
export function register(program: Command): void {
  program
    .command('emulator')
    .description('Run a local Wooxy API v3 emulator on 127.0.0.1 (see docs/emulator.md)')
    .option('-p, --port <port>', 'port to listen on (0 = any free port)', '8787')
    .option('-c, --config <file>', 'emulator YAML config (default: a demo list and the token from WOOXY_ACCESS_TOKEN or "dev-token")')
    .action(async (opts: { port: string; config?: string }) => {
      const port = parsePort(opts.port);
      // Loaded here so that other commands do not pay for the emulator's modules.
      const [{ createEmulator, defaultEmulatorConfig, loadEmulatorConfig, DEFAULT_DEV_TOKEN }, { createLogger }] = await Promise.all([
        import('../emulator/index.js'),
        import('../observability/logger.js'),
      ]);
      const config = opts.config ? await loadEmulatorConfig(opts.config) : defaultEmulatorConfig();
      const logger = createLogger();
      const emulator = await createEmulator(config, { port, logger });
      const tokenSource = opts.config ? `from ${opts.config}` : process.env.WOOXY_ACCESS_TOKEN ? 'from WOOXY_ACCESS_TOKEN' : `"${DEFAULT_DEV_TOKEN}" (set WOOXY_ACCESS_TOKEN to change it)`;
      process.stdout.write(
        `Wooxy API v3 emulator listening on ${emulator.url}\n` +
          `  control: ${emulator.controlUrl}/stats, /requests, /lists/<id>/contacts, /faults, /clock/advance, /process, /idle, /reset\n` +
          `  lists: ${config.lists.map((l) => l.id).join(', ') || '(none)'}; token ${tokenSource}\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          logger.info({ signal }, 'stopping the emulator');
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await emulator.close();
    });
}
