import type { Command } from 'commander';
import type { StoreContext } from '../store/context.js';
import type { DeadLetterFilter } from '../store/dead-letters.js';
import { table } from './format.js';
import { withStore } from './store-session.js';

interface Options {
  config: string;
  mapping?: string;
  key?: string;
  code?: string;
  all?: boolean;
  json?: boolean;
  limit?: string;
}

async function withDb<T>(file: string, work: (ctx: StoreContext, admin: typeof import('../store/dead-letters.js')) => Promise<T>): Promise<T> {
  const admin = await import('../store/dead-letters.js');
  return withStore(file, 'dead-letters', (ctx) => work(ctx, admin));
}

const filterOf = (o: Options): DeadLetterFilter => ({ mapping: o.mapping, key: o.key, code: o.code });

function withFilters(cmd: Command): Command {
  return cmd
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('-m, --mapping <name>', 'only this mapping')
    .option('-k, --key <key>', 'only this source key')
    .option('--code <code>', 'only this error code (e.g. ROW_INVALID, ERR_CONTACT_EXISTS)');
}

/** retry and discard change state: without a filter they need --all, so a typo cannot act on everything. */
function requireScope(cmd: Command, o: Options): void {
  if (!o.all && o.mapping === undefined && o.key === undefined && o.code === undefined) {
    cmd.error('error: give --mapping, --key or --code to choose dead letters, or --all for every one');
  }
}

export function register(program: Command): void {
  const group = program.command('dead-letters').description('contacts that could not be synced: list, retry, discard');

  withFilters(group.command('list').description('list dead letters, newest first'))
    .option('--json', 'print JSON (for scripts)')
    .option('--limit <n>', 'at most this many', '1000')
    .action(async (o: Options) => {
      const rows = await withDb(o.config, (h, a) => a.listDeadLetters(h, filterOf(o), Number(o.limit ?? 1000)));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write('no dead letters\n');
        return;
      }
      const body = rows.map((r) => [r.mapping, r.key, r.op, r.code, String(r.attempts), r.lastSeen.replace('T', ' ').slice(0, 19), r.message]);
      process.stdout.write(`${table(['MAPPING', 'KEY', 'OP', 'CODE', 'ATTEMPTS', 'LAST SEEN (UTC)', 'MESSAGE'], body, 80)}\n${rows.length} dead letter(s)\n`);
    });

  const retry = withFilters(group.command('retry').description("put contacts back in the outbox from their current desired state, and drop their dead letters"))
    .option('--all', 'every dead letter')
    .action(async (o: Options) => {
      requireScope(retry, o);
      const r = await withDb(o.config, (h, a) => a.retryDeadLetters(h, filterOf(o)));
      const rest = r.retried - r.queued;
      process.stdout.write(`retried ${r.retried} dead letter(s): ${r.queued} contact(s) queued${rest > 0 ? `, ${rest} with nothing to queue (a newer change is pending, or no state is left)` : ''}\n`);
    });

  const discard = withFilters(group.command('discard').description('delete dead letters (the contacts stay as they are in Wooxy)'))
    .option('--all', 'every dead letter')
    .action(async (o: Options) => {
      requireScope(discard, o);
      const n = await withDb(o.config, (h, a) => a.discardDeadLetters(h, filterOf(o)));
      process.stdout.write(`discarded ${n} dead letter(s)\n`);
    });
}
