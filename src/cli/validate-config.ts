import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/loader.js';
import type { Config } from '../config/schema.js';
import { isCdcError } from '../errors.js';

/**
 * `wooxy-cdc validate-config`: the file and the environment it reads, offline. With --online it also checks
 * what `run` would fail on, without changing anything: the server (wal_level, the role's privileges, durable
 * commits), each mapped table (there, readable, a replica identity that carries the key), each mapped column
 * (there, not generated, of a type its field's conversion reads), the publication and slot (there, or creatable
 * with autoCreate), and the access token, with one harmless request/find.
 */
export function register(program: Command): void {
  program
    .command('validate-config')
    .description('check a configuration file (and the environment it reads); exit 2 naming each bad path')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--online', 'also connect: check the database, the mapped tables and columns, and the access token')
    .action(async (opts: { config: string; online?: boolean }) => {
      const config = await loadConfig(opts.config);
      const tables = config.mappings.map((m) => `${m.name} (${m.schema}.${m.tableName} → list ${m.contactListId})`);
      if (!opts.online) {
        process.stdout.write(`${opts.config}: valid; ${config.mappings.length} mapping(s): ${tables.join(', ')}\n`);
        return;
      }
      const { ok, problems } = await checkOnline(config);
      for (const line of ok) process.stdout.write(`  ok  ${line}\n`);
      if (problems.length > 0) {
        process.stderr.write(`${opts.config}: ${problems.length} problem(s) found online:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
        process.exitCode = 2;
        return;
      }
      process.stdout.write(`${opts.config}: valid, and ready to run; ${config.mappings.length} mapping(s): ${tables.join(', ')}\n`);
    });
}

async function checkOnline(config: Config): Promise<{ ok: string[]; problems: string[] }> {
  const [{ default: pg }, { checkPrerequisites }, { compileMapping }, { vendorCheck }, { durableSessionOptions }, { createLimiter }, { WooxyClient }] = await Promise.all([
    import('pg'),
    import('../source/setup.js'),
    import('../mapping/mapper.js'),
    import('../mapping/vendor-check.js'),
    import('../db/durability.js'),
    import('../wooxy/limiter.js'),
    import('../wooxy/client.js'),
  ]);
  const ok: string[] = [];
  const problems: string[] = [];
  const pgc = config.postgres;
  const mappers = config.mappings.map((m) => compileMapping(m, vendorCheck));
  const client = new pg.Client({ connectionString: pgc.url, application_name: `${pgc.applicationName} validate-config` });
  client.on('error', () => undefined);
  try {
    await client.connect();
    ok.push('postgres.url: connected');
    try {
      await checkPrerequisites(client, mappers, { publication: pgc.publication, publishColumns: pgc.publishColumns });
      ok.push(`mappings: every table, column and column type readable (${mappers.map((m) => m.name).join(', ')})`);
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems.map((p) => `${p.path}: ${p.message}`));
      else if (isCdcError(e)) problems.push(...e.message.split('\n').slice(1).map((l) => `postgres: ${l.replace(/^\s*-\s*/, '')}`));
      else throw e;
    }
    const pub = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [pgc.publication]);
    const slot = await client.query<{ plugin: string }>('SELECT plugin FROM pg_replication_slots WHERE slot_name = $1', [pgc.slot]);
    for (const [what, name, found] of [['publication', pgc.publication, pub.rowCount !== 0], ['slot', pgc.slot, slot.rowCount !== 0]] as const) {
      if (found) ok.push(`postgres.${what}: ${name} exists`);
      else if (pgc.autoCreate) ok.push(`postgres.${what}: ${name} does not exist yet; run creates it (autoCreate)`);
      else problems.push(`postgres.${what}: ${name} does not exist and postgres.autoCreate is false (run prints the SQL to create it)`);
    }
  } catch (e) {
    problems.push(`postgres.url: cannot connect (${(e as Error).message})`);
  } finally {
    await client.end().catch(() => undefined);
  }
  // The state (outbox, contact state, leader lock) is where commits must be durable: postgres.stateUrl when set.
  const stateWhere = pgc.stateUrl ? 'postgres.stateUrl' : 'postgres';
  if (pgc.stateUrl) {
    const state = new pg.Client({ connectionString: pgc.stateUrl, application_name: `${pgc.applicationName} validate-config` });
    state.on('error', () => undefined);
    try {
      await state.connect();
      ok.push(`postgres.stateUrl: connected (the connector's schema ${pgc.schema} and its leader lock live there)`);
    } catch (e) {
      problems.push(`postgres.stateUrl: cannot connect (${(e as Error).message})`);
    } finally {
      await state.end().catch(() => undefined);
    }
  }
  try {
    const options = await durableSessionOptions(pgc.stateUrl ?? pgc.url, pgc.applicationName);
    ok.push(`${stateWhere}: commits are durable${options ? ' (synchronous_commit raised to on for the connector)' : ''}`);
  } catch (e) {
    if (isCdcError(e, 'PG_DURABILITY')) problems.push(`${stateWhere}: ${e.message}`);
  }
  // One harmless call: statuses of a request that cannot exist. "No matches found" is the answer of a good token.
  const w = config.wooxy;
  const wooxy = new WooxyClient({ accessToken: w.accessToken, baseUrl: w.baseUrl, limiter: createLimiter({ concurrency: 1 }), timeoutMs: w.timeoutMs, timeoutGraceMs: 0, retry: { maxAttempts: 1 } });
  try {
    await wooxy.find(['wooxy-cdc-validate-config']);
    ok.push(`wooxy.accessToken: accepted by ${w.baseUrl}`);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'WOOXY_UNAUTHORIZED') problems.push(`wooxy.accessToken: Wooxy refuses it (${(e as Error).message})`);
    else problems.push(`wooxy.baseUrl: the call to ${w.baseUrl} failed (${code ?? ''} ${(e as Error).message})`);
  }
  return { ok, problems };
}
