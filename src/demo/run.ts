/**
 * `wooxy-cdc demo`, start to end: a throwaway PostgreSQL, the Wooxy emulator and the connector, all in this
 * process; a demo `users` table filled and changed by a scripted workload; then a summary that compares the
 * emulator's list with the table projected through the mapping, field by field. Needs nothing but `npm ci`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import pretty from 'pino-pretty';
import { parseConfigText } from '../config/loader.js';
import { Connector } from '../connector.js';
import { findPostgresBinaries, freePort, LocalCluster } from '../db/local-cluster.js';
import { createEmulator } from '../emulator/index.js';
import { createLogger } from '../observability/logger.js';
import { compareList, type Convergence } from './converge.js';
import { insertUsers, makeUser, random, script, USERS_DDL } from './workload.js';

export interface DemoOptions {
  rows: number;
  logLevel: string;
  timeoutMs: number;
}

/** The package's root (where package.json is), from src/ or dist/src/ alike. */
export function packagePath(relative: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return path.join(dir, relative);
}

const say = (line = '') => process.stdout.write(`${line}\n`);

interface Progress {
  caughtUp: boolean;
  pending: number;
  inflight: number;
  unresolved: number;
  resolved: number;
  byWebhook: number;
  sent: number;
  dead: number;
}

async function progress(db: pg.Client, slot: string, lsn: string): Promise<Progress> {
  const { rows } = await db.query<Progress>(
    `SELECT COALESCE((SELECT durable_lsn >= $2::pg_lsn FROM wooxy_cdc.replication_state WHERE slot = $1), false) AS "caughtUp",
            (SELECT count(*) FROM wooxy_cdc.outbox WHERE state = 'pending')::int AS pending,
            (SELECT count(*) FROM wooxy_cdc.outbox WHERE state = 'inflight')::int AS inflight,
            (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS unresolved,
            (SELECT count(*) FROM wooxy_cdc.requests WHERE status <> 'new')::int AS resolved,
            (SELECT count(*) FROM wooxy_cdc.requests WHERE resolved_via = 'webhook')::int AS "byWebhook",
            (SELECT count(*) FROM wooxy_cdc.requests)::int AS sent,
            (SELECT count(*) FROM wooxy_cdc.dead_letters)::int AS dead`,
    [slot, lsn],
  );
  return rows[0]!;
}

/**
 * Waits until every change committed so far is durable (a logical message written now is behind it), the
 * outbox is empty and no request is unresolved; prints the flow once a second meanwhile.
 */
async function settle(db: pg.Client, slot: string, contacts: () => number, timeoutMs: number): Promise<Progress> {
  const { rows } = await db.query<{ lsn: string }>(`SELECT pg_logical_emit_message(true, 'wooxy-cdc', 'demo checkpoint')::text AS lsn`);
  const lsn = rows[0]!.lsn;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let lastAt = 0;
  for (;;) {
    const p = await progress(db, slot, lsn);
    const line = `  outbox ${p.pending} pending, ${p.inflight} in flight · Wooxy requests ${p.sent} sent, ${p.resolved} resolved · ${contacts()} contacts in the list · ${p.dead} dead letter(s)`;
    if (line !== last && Date.now() - lastAt >= 1_000) {
      say(line);
      last = line;
      lastAt = Date.now();
    }
    if (p.caughtUp && p.pending === 0 && p.inflight === 0 && p.unresolved === 0) {
      if (line !== last) say(line);
      return p;
    }
    if (Date.now() > deadline) return p;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function printSummary(c: Convergence, rows: number, filtered: number, p: Progress, dead: Array<{ source_key: string; error_code: string; human_error: string }>): void {
  const row = (label: string, value: string) => say(`  ${label.padEnd(28)}${value}`);
  say();
  say('Summary');
  row('Rows in public.users', `${rows} (${filtered} filtered out by deleted_at, ${c.invalid.length} invalid)`);
  row('Contacts expected', String(c.expected));
  row('Contacts in the emulator', `${c.actual} (list demo-list)`);
  row('Wooxy requests', `${p.sent} sent, ${p.resolved} resolved (${p.byWebhook} by webhook, ${p.resolved - p.byWebhook} by request/find), ${p.unresolved} unresolved`);
  row('Dead letters', dead.length === 0 ? '0' : `${dead.length}`);
  for (const d of dead) say(`    users/${d.source_key} ${d.error_code}: ${d.human_error}`);
  if (c.missing.length) row('Missing from the list', c.missing.slice(0, 10).join(', '));
  if (c.unexpected.length) row('Not in the table', c.unexpected.slice(0, 10).join(', '));
  for (const m of c.mismatched.slice(0, 10)) row('Differs', `users/${m.key} ${m.field}: table ${JSON.stringify(m.expected)}, Wooxy ${JSON.stringify(m.actual)}`);
  const deadOk = c.invalid.every((k) => dead.some((d) => d.source_key === k));
  row('Field by field', c.mismatched.length === 0 ? `every mapped field of ${c.expected} contacts equal` : `${c.mismatched.length} difference(s)`);
  say();
  say(
    c.converged && deadOk
      ? `Result: converged — the emulator's list equals the table projected through the mapping.`
      : `Result: DIVERGED — see the differences above.`,
  );
}

export async function runDemo(opts: DemoOptions): Promise<boolean> {
  const log = createLogger({
    level: opts.logLevel,
    destination: pretty({ colorize: process.stdout.isTTY === true, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,svc' }),
  });
  const cleanup: Array<() => Promise<unknown>> = [];
  try {
    say('wooxy-cdc demo: PostgreSQL → logical replication → outbox → Wooxy API (emulated), on this machine.');
    const { binDir, source } = await findPostgresBinaries();
    say(`▸ Starting a throwaway PostgreSQL with wal_level=logical (${source}: ${binDir}) …`);
    const cluster = await LocalCluster.start({ binDir });
    cleanup.push(() => cluster.stop('fast'));
    const db = new pg.Client({ connectionString: cluster.url(), application_name: 'wooxy-cdc demo workload' });
    db.on('error', () => undefined); // the cluster stops under it at the end of the demo
    await db.connect();
    cleanup.push(() => db.end());
    await db.query(USERS_DDL);

    const token = `demo-${randomBytes(12).toString('hex')}`;
    const emulator = await createEmulator(
      {
        tokens: [token],
        lists: [{ id: 'demo-list', variables: [{ name: 'plan' }, { name: 'signupDate', type: 'date' }] }],
        processing: { delayMs: 100 },
        webhooks: { baseDelayMs: 50, maxDelayMs: 1_000 },
      },
      { logger: log },
    );
    cleanup.push(() => emulator.close());
    say(`▸ Wooxy API v3 emulator on ${emulator.url} (list demo-list, variables plan and signupDate)`);

    const httpPort = await freePort();
    const configFile = packagePath('config/demo.yaml');
    const config = parseConfigText(
      await readFile(configFile, 'utf8'),
      {
        DATABASE_URL: cluster.url(),
        WOOXY_BASE_URL: emulator.url,
        WOOXY_ACCESS_TOKEN: token,
        HTTP_PORT: String(httpPort),
        WEBHOOK_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
        WOOXY_WEBHOOK_SECRET: randomBytes(24).toString('hex'),
        LOG_LEVEL: opts.logLevel,
      },
      configFile,
    );
    say(`▸ Starting the connector with ${path.relative(process.cwd(), configFile) || configFile} …`);
    const connector = new Connector({ config, log });
    cleanup.push(() => connector.stop());
    await connector.start();
    const streamingBy = Date.now() + 30_000;
    while (!connector.replication?.isStreaming) {
      if (Date.now() > streamingBy) throw new Error('the connector did not start streaming within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    say(`▸ Streaming. Try meanwhile: curl http://127.0.0.1:${httpPort}/metrics`);

    const contacts = () => emulator.contacts('demo-list')?.length ?? 0;
    const mapper = connector.mappers[0]!;
    const slot = config.postgres.slot;
    const rnd = random(42);
    const users = Array.from({ length: opts.rows }, (_, i) => makeUser(i + 1, rnd));
    say();
    say(`▸ ${opts.rows} users sign up (${users.filter((u) => u.phone).length} with a phone, ${users.filter((u) => u.deleted_at).length} soft-deleted), in transactions of 50`);
    for (let i = 0; i < users.length; i += 50) await insertUsers(db, users.slice(i, i + 50));
    await settle(db, slot, contacts, opts.timeoutMs);

    for (const step of script(opts.rows, rnd)) {
      const detail = await step.run(db);
      say(`▸ ${step.title}${detail ? ` — ${detail}` : ''}`);
    }
    say('▸ Waiting for every change to reach the list …');
    const p = await settle(db, slot, contacts, opts.timeoutMs);
    await emulator.idle(10_000).catch(() => undefined);

    const table = await db.query<Record<string, unknown>>('SELECT * FROM users ORDER BY id');
    const list = emulator.contacts('demo-list') ?? [];
    const result = compareList(mapper, table.rows, list);
    const dead = (await db.query<{ source_key: string; error_code: string; human_error: string }>('SELECT source_key, error_code, human_error FROM wooxy_cdc.dead_letters ORDER BY source_key')).rows;
    const filtered = table.rows.filter((r) => !mapper.matches(r)).length;
    printSummary(result, table.rowCount ?? 0, filtered, p, dead);
    return result.converged && result.invalid.every((k) => dead.some((d) => d.source_key === k));
  } finally {
    for (const close of cleanup.reverse()) await close().catch(() => undefined);
  }
}
