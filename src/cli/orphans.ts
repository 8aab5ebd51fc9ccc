import type { Command } from 'commander';
import { CdcError } from '../errors.js';
import type { OrphanRow } from '../store/orphans.js';
import type { Config } from '../config/schema.js';
import type { StoreContext } from '../store/context.js';
import { operator } from './removals.js';
import { withStore } from './store-session.js';

interface Options {
  config: string;
  mapping?: string;
  json?: boolean;
}

type Store = typeof import('../store/orphans.js');

/** What the connector keeps for mappings this configuration lacks, and whether the instance leading now runs one. */
async function withOrphans<T>(o: Options, work: (orphans: Array<OrphanRow & { runByLeader: boolean }>, store: Store, ctx: StoreContext) => Promise<T>): Promise<T> {
  const [{ lockHolder }, store] = await Promise.all([import('../ha/leader.js'), import('../store/orphans.js')]);
  const names = (config: Config) => config.mappings.map((m) => m.name);
  return withStore(
    o.config,
    'orphans',
    async (ctx, config, handle) => {
      // The leader lock lives with the state (postgres.stateUrl).
      const leads = (await lockHolder(handle.pool, config.postgres.slot)) !== null;
      const orphans = (await store.listOrphans(ctx, names(config), config.postgres.slot))
        .filter((x) => o.mapping === undefined || x.mapping === o.mapping)
        .map((x) => ({ ...x, runByLeader: x.recordedThisTerm && leads }));
      return work(orphans, store, ctx);
    },
    (config) => {
      if (o.mapping !== undefined && names(config).includes(o.mapping)) {
        throw new CdcError('USAGE_INVALID', `--mapping ${o.mapping}: ${o.config} configures it, so it is no orphan (remove or rename it in the file first)`);
      }
    },
  );
}

const holds = (x: OrphanRow) => `${x.pending} pending and ${x.inflight} in-flight entries, ${x.contacts} contact state(s), ${x.deadLetters} dead letter(s)`;

export function register(program: Command): void {
  const group = program
    .command('orphans')
    .description('what the connector keeps for mappings that are not configured any more (removed or renamed): list it, or discard it (the contacts stay in Wooxy)');

  group
    .command('list')
    .description('mappings the connector has state for that the configuration lacks, with what each holds')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('-m, --mapping <name>', 'only this one')
    .option('--json', 'print JSON (for scripts)')
    .action(async (o: Options) => {
      const out = await withOrphans(o, async (orphans) => orphans);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      if (out.length === 0) {
        process.stdout.write(o.mapping ? `${o.mapping}: nothing kept for it\n` : `no orphans: every mapping the connector keeps state for is configured in ${o.config}\n`);
        return;
      }
      for (const x of out) {
        if (x.runByLeader) {
          process.stdout.write(`${x.mapping}: not in ${o.config}, but the instance leading now runs it (${holds(x)}): its configuration differs from this file\n`);
          continue;
        }
        process.stdout.write(
          `${x.mapping}: not configured; the connector keeps ${holds(x)}\n` +
            `  forget it (its contacts stay in Wooxy as they are): wooxy-cdc orphans discard --mapping ${x.mapping} --config ${o.config}\n`,
        );
      }
    });

  group
    .command('discard')
    .description("forget a mapping that is not configured: its outbox entries, contact states, dead letters and guard and mapping records; its contacts stay in Wooxy as they are")
    .requiredOption('-m, --mapping <name>', 'the mapping to forget')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .action(async (o: Options & { mapping: string }) => {
      const r = await withOrphans(o, async (orphans, store, ctx) => {
        const orphan = orphans[0];
        if (!orphan) return null;
        if (orphan.runByLeader) {
          throw new CdcError('USAGE_INVALID', `--mapping ${o.mapping}: the instance leading now runs it, so its configuration differs from ${o.config}; restart the instances with this file first`);
        }
        return store.discardOrphan(ctx, o.mapping, operator());
      });
      if (r === null) {
        process.stdout.write(`${o.mapping}: nothing kept for it; nothing to discard\n`);
        return;
      }
      process.stdout.write(`discarded mapping ${o.mapping}: ${holds({ ...r, mapping: o.mapping, recordedThisTerm: false })}; its contacts stay in Wooxy as they are\n`);
    });
}
