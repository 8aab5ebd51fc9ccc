import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { CdcError } from '../errors.js';
import type { StoreContext } from '../store/context.js';
import type { Decision, HoldSummary } from '../store/removals.js';
import { table } from './format.js';
import { withStore } from './store-session.js';

interface Options {
  config: string;
  mapping: string;
  json?: boolean;
  limit?: string;
}

type Admin = typeof import('../store/removals.js');

async function withDb<T>(o: Options, work: (ctx: StoreContext, admin: Admin, config: Config) => Promise<T>): Promise<T> {
  const admin = await import('../store/removals.js');
  return withStore(o.config, 'removals', (ctx, config) => work(ctx, admin, config), (config) => {
    if (!config.mappings.some((m) => m.name === o.mapping)) {
      throw new CdcError('USAGE_INVALID', `--mapping ${o.mapping}: no such mapping (configured: ${config.mappings.map((m) => m.name).join(', ')})`);
    }
  });
}

/** Who decided, for the record: the operator's account on the machine that ran the command. */
export function operator(): string {
  let user = process.env.USER ?? process.env.USERNAME ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (an arbitrary uid in a container): the environment's name stands.
  }
  return `${user}@${hostname()}`;
}

const utc = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')} UTC`;

function describeHold(h: HoldSummary): string {
  const share = h.synced > 0 ? ` — ${h.contacts} of ${h.synced} synced contacts (${Math.round((100 * h.contacts) / h.synced)}%)` : '';
  return `${h.mapping}: ${h.contacts} removal(s) held since ${utc(h.heldSince!)}${share}; likely cause: ${h.cause ?? 'unknown'}`;
}

export function describeDecision(d: Decision): string {
  return `${d.decision === 'approve' ? 'approved' : 'discarded'} ${d.contacts} removal(s) ${utc(d.decidedAt)} by ${d.decidedBy}${d.cause ? ` (held for: ${d.cause})` : ''}`;
}

function withMapping(cmd: Command): Command {
  return cmd.requiredOption('-m, --mapping <name>', 'the mapping whose removals are held').requiredOption('-c, --config <file>', 'YAML configuration file');
}

export function register(program: Command): void {
  const group = program
    .command('removals')
    .description("removals the mass-removal guard holds: list them, approve them (they are sent) or discard them (the contacts stay in Wooxy)");

  withMapping(group.command('list').description('the removals held for a mapping, and the decisions taken before'))
    .option('--json', 'print JSON (for scripts)')
    .option('--limit <n>', 'at most this many removals', '1000')
    .action(async (o: Options) => {
      const out = await withDb(o, async (ctx, a) => ({
        hold: await a.holdSummary(ctx, o.mapping),
        removals: await a.listHeldRemovals(ctx, o.mapping, Number(o.limit ?? 1000)),
        decisions: await a.recentDecisions(ctx, o.mapping),
      }));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      const last = out.decisions[0] ? `; last decision: ${describeDecision(out.decisions[0])}` : '';
      if (!out.hold.held) {
        process.stdout.write(`${o.mapping}: no removals held${last}\n`);
        return;
      }
      const body = out.removals.map((r) => [r.key, Object.entries(r.identifiers).map(([k, v]) => `${k} ${v}`).join(', '), r.source === 'deleted' ? 'deleted' : 'filtered out']);
      const more = out.hold.contacts > out.removals.length ? ` (first ${out.removals.length} shown)` : '';
      const cfg = `--mapping ${o.mapping} --config ${o.config}`;
      process.stdout.write(
        `${describeHold(out.hold)}\n${table(['KEY', 'WOOXY KNOWS IT AS', 'SOURCE ROW'], body, 80)}\n${out.hold.contacts} removal(s) held${more}${last}\n` +
          `  send them:                      wooxy-cdc removals approve ${cfg}\n` +
          `  keep the contacts in Wooxy:     wooxy-cdc removals discard ${cfg}\n`,
      );
    });

  withMapping(group.command('approve').description('release the held removals: the running connector sends them, and the guard does not hold them again')).action(async (o: Options) => {
    const r = await withDb(o, (ctx, a, config) => a.approveRemovals(ctx, { slot: config.postgres.slot, mapping: o.mapping, decidedBy: operator() }));
    if (!r.held) {
      process.stdout.write(`no removals of mapping ${o.mapping} are held: nothing to approve\n`);
      return;
    }
    process.stdout.write(`approved ${r.contacts} held removal(s) of mapping ${o.mapping}: the running connector sends them${later(r.later)}\n`);
  });

  withMapping(group.command('discard').description('forget the held removals: the contacts stay in Wooxy, and the connector no longer counts them as synced')).action(async (o: Options) => {
    const r = await withDb(o, (ctx, a, config) => a.discardRemovals(ctx, { slot: config.postgres.slot, mapping: o.mapping, decidedBy: operator() }));
    if (!r.held) {
      process.stdout.write(`no removals of mapping ${o.mapping} are held: nothing to discard\n`);
      return;
    }
    process.stdout.write(`discarded ${r.contacts} held removal(s) of mapping ${o.mapping}: the contacts stay in Wooxy, no longer synced by the connector${later(r.later)}\n`);
  });
}

const later = (n: number) => (n > 0 ? `; ${n} removal(s) queued since are judged afresh` : '');
