#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isCdcError } from '../errors.js';
import { registerCommands } from './commands.js';
import { packageVersion } from './version.js';

/** Exit codes are part of the CLI contract: scripts and orchestrators branch on them. */
export const ExitCodes = { OK: 0, FAILURE: 1, CONFIG: 2 } as const;

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('wooxy-cdc')
    .description('Stream Postgres changes to Wooxy contact lists through logical replication')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .exitOverride()
    .showHelpAfterError();
  registerCommands(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCodes.OK;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? ExitCodes.OK : ExitCodes.CONFIG;
    if (isCdcError(e, 'CONFIG_INVALID') || isCdcError(e, 'CONFIG_ENV_MISSING') || isCdcError(e, 'USAGE_INVALID')) {
      process.stderr.write(`${e.message}\n`);
      return ExitCodes.CONFIG;
    }
    const err = e as Error & { code?: string };
    process.stderr.write(`wooxy-cdc: ${err.code ? `[${err.code}] ` : ''}${err.message}\n`);
    return ExitCodes.FAILURE;
  }
}

const code = await main(process.argv);
process.exitCode = code;
