import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('demo')
    .description('everything on this machine: a throwaway Postgres, the Wooxy emulator, a demo table and workload; exit 0 when the list converged')
    .option('--rows <n>', 'users in the table before the scripted changes', '200')
    .option('--log-level <level>', "the connector's log level (debug shows every batch)", 'info')
    .option('--timeout <seconds>', 'give up waiting for the list to converge after this long', '120')
    .action(async (o: { rows: string; logLevel: string; timeout: string }) => {
      const rows = Number(o.rows);
      if (!Number.isInteger(rows) || rows < 50 || rows > 100_000) program.error('error: --rows must be an integer from 50 to 100000');
      const { runDemo } = await import('../demo/run.js');
      const converged = await runDemo({ rows, logLevel: o.logLevel, timeoutMs: Number(o.timeout) * 1000 });
      process.exitCode = converged ? 0 : 1;
    });
}
