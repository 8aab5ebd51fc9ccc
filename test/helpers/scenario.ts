import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { parseConfig } from '../../src/config/loader.js';
import { lockHolder } from '../../src/ha/leader.js';
import { freePort, type LocalCluster } from '../../src/db/local-cluster.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { validateContact } from '../../src/wooxy/validate.js';
import { runCli, startConnectorProcess, waitStreaming, writeConfig, type RunningConnector } from './child.js';
import { projectionDiff } from './converge.js';
import { waitFor } from './wait.js';

/**
 * Model-based convergence scenarios (issue 7). The model is the table itself: whatever happened on the way —
 * faults, kills, a Postgres restart — the emulator's list must end equal to the projection of the table
 * through the mapping. Emails and phones are UNIQUE (deferrable, so two users can swap in one transaction),
 * so every final table state is one Wooxy can hold.
 */
export type Op =
  | { k: 'insert'; id: number; e: number | null; p: number | null; n: string }
  | { k: 'email'; id: number; e: number | null }
  | { k: 'phone'; id: number; p: number | null }
  | { k: 'name'; id: number; n: string }
  | { k: 'unmapped'; id: number }
  | { k: 'bio'; id: number; size: number }
  | { k: 'delete'; id: number }
  | { k: 'status'; id: number; banned: boolean }
  | { k: 'swap'; a: number; b: number }
  | { k: 'bulk'; ops: Op[] };

export interface Faults {
  serverErrorRate: number;
  timeoutRate: number;
  rateLimitRate: number;
  contactErrorRate: number;
  webhookDropRate: number;
  randomOrder: boolean;
  webhook: boolean;
}

export interface Scenario {
  ops: Op[];
  faults: Faults;
  /** Op indices before which the connector is SIGKILLed (and restarted a few ops later). */
  kills: number[];
  /** Op index before which Postgres is restarted, or null. */
  pgRestartAt: number | null;
  /** A second instance runs beside the first, as a standby that takes over whenever the leader loses its lock. */
  standby: boolean;
  /** Op indices before which the leader's lock session is terminated (pg_terminate_backend): leadership moves. */
  lockCuts: number[];
  /**
   * The operational lifecycle, at op indices (null: never): a compatible type change of a mapped column; a
   * breaking one (a mapped column dropped: the mapping stops) and, later, its fix (the column back and every
   * instance restarted); a mapping change (a field added, every instance restarted with it). The first two lift
   * the publication's column list first, as the README tells a DBA to (PostgreSQL refuses to retype or drop a
   * listed column). A TRUNCATE of the table: the mass-removal guard (set low here) holds its removals, and the
   * operator approves them with `wooxy-cdc removals approve` — as the operator approves any hold the scenario's
   * deletes may cause.
   */
  schema: { compatibleAt: number | null; breakAt: number | null; fixAt: number | null; remapAt: number | null; truncateAt: number | null };
  /** postgres.stateUrl: the connector's tables and leader lock in a second database, apart from the source. */
  stateDb: boolean;
}

export interface ScenarioResult {
  converged: boolean;
  diff: string[];
  kills: number;
  pgRestarts: number;
  lockCuts: number;
  /** Lifecycle events that happened: compatible, break, fix, remap, truncate. */
  lifecycle: string[];
  /** Holds of the mass-removal guard the operator approved (`wooxy-cdc removals approve`). */
  approvals: number;
  faultsInjected: number;
  requests: number;
  contactsExisted: number;
  deadLetters: number;
  peakConcurrency: number;
  ms: number;
}

const ID = fc.integer({ min: 1, max: 14 });
const IDX = fc.option(fc.integer({ min: 0, max: 30 }), { nil: null, freq: 5 });
// Names take any unicode (NUL aside, which Postgres text cannot hold), control characters included.
const NAME = fc.string({ unit: 'binary', maxLength: 24 }).map((s) => s.split(String.fromCharCode(0)).join(''));

const simpleOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('insert' as const), id: ID, e: IDX, p: IDX, n: NAME }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('email' as const), id: ID, e: IDX }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('phone' as const), id: ID, p: IDX }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('name' as const), id: ID, n: NAME }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unmapped' as const), id: ID }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('bio' as const), id: ID, size: fc.integer({ min: 1, max: 9000 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('delete' as const), id: ID }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('status' as const), id: ID, banned: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('swap' as const), a: ID, b: ID }) },
);
const op: fc.Arbitrary<Op> = fc.oneof({ weight: 9, arbitrary: simpleOp }, { weight: 1, arbitrary: fc.record({ k: fc.constant('bulk' as const), ops: fc.array(simpleOp, { maxLength: 12 }) }) });

const rate = (max: number) => fc.oneof(fc.constant(0), fc.double({ min: 0, max, noNaN: true }));

export function scenarioArbitrary(opts: { minOps?: number; maxOps?: number } = {}): fc.Arbitrary<Scenario> {
  return fc
    .record({
      ops: fc.array(op, { minLength: opts.minOps ?? 20, maxLength: opts.maxOps ?? 60 }),
      faults: fc.record({
        serverErrorRate: rate(0.2),
        timeoutRate: rate(0.05),
        rateLimitRate: rate(0.1),
        contactErrorRate: rate(0.2),
        webhookDropRate: rate(0.5),
        randomOrder: fc.boolean(),
        webhook: fc.boolean(),
      }),
      kills: fc.array(fc.nat(), { maxLength: 3 }),
      pgRestartAt: fc.option(fc.nat(), { nil: null, freq: 2 }),
      standby: fc.boolean(),
      stateDb: fc.boolean(),
      lockCuts: fc.array(fc.nat(), { maxLength: 4 }),
      lifecycle: fc.record({
        compatibleAt: fc.option(fc.nat(), { nil: null, freq: 2 }),
        breakAt: fc.option(fc.nat(), { nil: null, freq: 2 }),
        fixAfter: fc.integer({ min: 1, max: 8 }),
        remapAt: fc.option(fc.nat(), { nil: null, freq: 2 }),
        truncateAt: fc.option(fc.nat(), { nil: null, freq: 3 }),
      }),
    })
    .map(({ lifecycle: l, ...s }) => ({
      ...s,
      schema: {
        compatibleAt: l.compatibleAt === null ? null : l.compatibleAt % s.ops.length,
        breakAt: l.breakAt === null ? null : l.breakAt % s.ops.length,
        // A fix that would fall after the last op happens before the quiesce.
        fixAt: l.breakAt === null ? null : (l.breakAt % s.ops.length) + l.fixAfter < s.ops.length ? (l.breakAt % s.ops.length) + l.fixAfter : null,
        remapAt: l.remapAt === null ? null : l.remapAt % s.ops.length,
        truncateAt: l.truncateAt === null ? null : l.truncateAt % s.ops.length,
      },
      kills: [...new Set(s.kills.map((k) => k % s.ops.length))].sort((a, b) => a - b),
      pgRestartAt: s.pgRestartAt === null ? null : s.pgRestartAt % s.ops.length,
      // Leadership is lost only where a standby can take it (without one, a cut is just a reconnect).
      lockCuts: s.standby ? [...new Set(s.lockCuts.map((k) => k % s.ops.length))].sort((a, b) => a - b) : [],
    }));
}

const email = (i: number | null) => (i === null ? null : `user${i}@example.com`);
const phone = (i: number | null) => (i === null ? null : `+1555000${String(i).padStart(4, '0')}`);

async function apply(client: pg.Client, o: Op): Promise<void> {
  switch (o.k) {
    case 'insert':
      await client.query('INSERT INTO users (id, email, phone, first_name) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING', [o.id, email(o.e), phone(o.p), o.n]);
      return;
    case 'email':
      await client.query('UPDATE users SET email = $2 WHERE id = $1', [o.id, email(o.e)]);
      return;
    case 'phone':
      await client.query('UPDATE users SET phone = $2 WHERE id = $1', [o.id, phone(o.p)]);
      return;
    case 'name':
      await client.query('UPDATE users SET first_name = $2 WHERE id = $1', [o.id, o.n]);
      return;
    case 'unmapped':
      await client.query('UPDATE users SET plan = md5(random()::text) WHERE id = $1', [o.id]);
      return;
    case 'bio':
      // Large and incompressible: stored out of line, so later updates arrive without it (unchanged TOAST).
      await client.query('UPDATE users SET bio = $2 WHERE id = $1', [o.id, randomBytes(o.size).toString('base64')]);
      return;
    case 'delete':
      await client.query('DELETE FROM users WHERE id = $1', [o.id]);
      return;
    case 'status':
      await client.query('UPDATE users SET status = $2 WHERE id = $1', [o.id, o.banned ? 'banned' : 'active']);
      return;
    case 'swap':
      await client.query(
        `UPDATE users u SET email = v.email, phone = v.phone FROM users v
         WHERE (u.id, v.id) IN (($1::bigint, $2::bigint), ($2::bigint, $1::bigint)) AND u.id <> v.id`,
        [o.a, o.b],
      );
      return;
    case 'bulk':
      for (const inner of o.ops) await apply(client, inner);
      return;
  }
}

async function applyInTransaction(client: pg.Client, o: Op): Promise<void> {
  try {
    await client.query('BEGIN');
    await apply(client, o);
    await client.query('COMMIT');
  } catch {
    // A uniqueness violation (two users wanting one email) is the database saying no: the op never happened.
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

export const MAPPING = {
  table: 'public.users',
  contactListId: 'list-1',
  fields: { userId: 'id', email: 'email', phoneNumber: 'phone', firstName: 'first_name', name: 'bio' },
  filter: [{ column: 'status', notEquals: 'banned' }],
  // Low enough that a TRUNCATE of the scenario's dozen rows is held (the defaults need more than 100).
  guard: { removePercent: 50, minRemovals: 5 },
};

/** The mapping after a change: a field added, which every existing contact must receive. */
export const MAPPING_V2 = { ...MAPPING, fields: { ...MAPPING.fields, lastName: { value: 'Mapped later' } } };

/** Runs one scenario on its own database of `cluster`; the connector runs as a child process. */
export async function runScenario(s: Scenario, cluster: LocalCluster, log: (line: string) => void = () => undefined): Promise<ScenarioResult> {
  const started = Date.now();
  const dbName = `scen_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client(cluster.url());
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = cluster.url(dbName);
  const connect = () =>
    // Right after a restart the server may refuse a moment longer than pg_ctl waited: retry until it answers.
    waitFor(
      async () => {
        const c = new pg.Client(url);
        c.on('error', () => undefined); // a Postgres restart ends it; the scenario reconnects
        await c.connect();
        return c;
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'Postgres accepting connections' },
    );
  // With stateDb, the connector's own tables and its leader lock live in a second database (postgres.stateUrl).
  const stateName = s.stateDb ? `${dbName}_state` : dbName;
  if (s.stateDb) {
    const a = new pg.Client(cluster.url());
    await a.connect();
    await a.query(`CREATE DATABASE ${stateName}`);
    await a.end();
  }
  const stateUrl = cluster.url(stateName);
  const connectState = () =>
    waitFor(
      async () => {
        const c = new pg.Client(stateUrl);
        c.on('error', () => undefined);
        await c.connect();
        return c;
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'Postgres accepting connections' },
    );
  let db = await connect();
  // The connector's tables: the source database's own client unless they live apart.
  let sdb = s.stateDb ? await connectState() : db;
  await db.query(`CREATE TABLE users (
    id bigint PRIMARY KEY, email text UNIQUE DEFERRABLE INITIALLY DEFERRED, phone text UNIQUE DEFERRABLE INITIALLY DEFERRED,
    first_name text, bio text, plan text, status text NOT NULL DEFAULT 'active')`);

  const emulator: Emulator = await createEmulator({
    tokens: ['tok'],
    lists: [{ id: 'list-1' }],
    processing: { delayMs: 10, randomOrder: s.faults.randomOrder },
    faults: {
      serverErrorRate: s.faults.serverErrorRate,
      timeoutRate: s.faults.timeoutRate,
      rateLimitRate: s.faults.rateLimitRate,
      contactErrorRate: s.faults.contactErrorRate,
      webhookDropRate: s.faults.webhookDropRate,
    },
  });
  const port = await freePort();
  const secret = randomBytes(18).toString('hex');
  const configOf = (mapping: typeof MAPPING) => writeConfig({
    postgres: { url: '${DATABASE_URL}', ...(s.stateDb ? { stateUrl: '${WOOXY_STATE_URL}' } : {}), slot: `slot_${dbName}`, publication: `pub_${dbName}` },
    wooxy: { accessToken: '${WOOXY_ACCESS_TOKEN}', baseUrl: emulator.url, timeoutMs: 300, timeoutGraceMs: 500, maxRetries: 2 },
    capture: { flushIntervalMs: 10 },
    // Small batches: more requests, so more of them meet a fault.
    delivery: { idleIntervalMs: 20, pauseRetryMs: 200, maxAttempts: 50, batchSize: 5 },
    reconcile: { pollIntervalMs: s.faults.webhook ? 2000 : 100 },
    ha: { pollIntervalMs: 200 },
    http: { host: '127.0.0.1', port: '${HTTP_PORT}' },
    // Statuses are posted to the first instance; a standby that leads meanwhile is told by polling or by it.
    ...(s.faults.webhook ? { webhook: { publicUrl: `http://127.0.0.1:${port}`, secret: '${WOOXY_WEBHOOK_SECRET}' } } : {}),
    log: { level: 'info' },
    mappings: [mapping],
  });
  let mapping: typeof MAPPING = MAPPING;
  let configFile = configOf(mapping);
  const env = { DATABASE_URL: url, WOOXY_STATE_URL: stateUrl, WOOXY_ACCESS_TOKEN: 'tok', WOOXY_WEBHOOK_SECRET: secret, HTTP_PORT: String(port) };
  const outputs: string[] = [];
  let running: RunningConnector | null = null;
  let standby: RunningConnector | null = null;
  const slot = `slot_${dbName}`;
  /** Until the first instance streams; with a standby running, one of the two leads. */
  const start = async () => {
    running = startConnectorProcess(configFile, env);
    if (standby) {
      const r = running;
      await waitFor(() => /elected leader|standby: another instance/.test(r.output()), { timeoutMs: 30_000, message: `instance started\n${r.output()}` });
    } else await waitStreaming(running, (text, v) => db.query(text, v), slot);
  };
  /** Ends whichever instance holds the leader lock's session: its pipeline stops, the other one takes over. */
  const cutLock = async () => {
    const holder = await lockHolder(sdb, slot);
    if (holder) await sdb.query('SELECT pg_terminate_backend($1)', [holder.pid]);
  };
  const kill = async () => {
    if (!running) return;
    running.proc.kill('SIGKILL');
    await running.exited;
    outputs.push(running.output());
    running = null;
  };
  /** Every instance stopped (SIGTERM) and started again: how an operator rolls out a fix or a new configuration. */
  const restartAll = async () => {
    for (const r of [running, standby]) {
      if (!r) continue;
      r.proc.kill('SIGTERM');
      await r.exited;
      outputs.push(r.output());
    }
    const hadStandby = standby !== null;
    running = null;
    standby = null;
    await start();
    if (hadStandby) standby = startConnectorProcess(configFile, { ...env, HTTP_PORT: String(await freePort()) });
  };
  /** As a DBA does before retyping or dropping a listed column: every column published until the connector sets the list again. */
  const liftColumnList = () => db.query(`ALTER PUBLICATION pub_${dbName} SET TABLE users`);
  const lifecycle: string[] = [];
  /** The operator's answer to a hold of the mass-removal guard: approve it (the removals are sent). */
  let approvals = 0;
  const approveHeld = async (): Promise<boolean> => {
    const held = await sdb.query(`SELECT 1 FROM wooxy_cdc.removal_guard WHERE held_since IS NOT NULL`).catch(() => ({ rowCount: 0 }));
    if (!held.rowCount) return false;
    const r = await runCli(['removals', 'approve', '--mapping', 'users', '--config', configFile], env);
    if (r.code !== 0) throw new Error(`wooxy-cdc removals approve failed (${r.code}): ${r.stdout}${r.stderr}`);
    log(`  removals approved: ${r.stdout.trim()}`);
    approvals++;
    return true;
  };
  const fix = async () => {
    await db.query('ALTER TABLE users ADD COLUMN bio text');
    await restartAll();
    lifecycle.push('fix');
  };

  let kills = 0;
  let pgRestarts = 0;
  let lockCuts = 0;
  try {
    await start();
    if (s.standby) {
      standby = startConnectorProcess(configFile, { ...env, HTTP_PORT: String(await freePort()) });
      const b = standby;
      await waitFor(() => /standby: another instance/.test(b.output()), { timeoutMs: 30_000, message: `the standby waits\n${b.output()}` });
    }
    // A starting population, so most generated changes meet a row.
    await db.query(`INSERT INTO users (id, email, phone, first_name) SELECT g, 'user' || (g + 100) || '@example.com', NULL, 'Start ' || g FROM generate_series(1, 10) g`);
    let restartAfter = -1;
    for (let i = 0; i < s.ops.length; i++) {
      if (s.kills.includes(i)) {
        log(`  op ${i}: SIGKILL`);
        await kill();
        kills++;
        restartAfter = i + 2; // a couple of changes happen while it is down
      }
      if (s.lockCuts.includes(i)) {
        log(`  op ${i}: leader's lock session terminated`);
        await cutLock();
        lockCuts++;
      }
      if (s.pgRestartAt === i) {
        log(`  op ${i}: Postgres restart`);
        await db.end().catch(() => undefined);
        if (sdb !== db) await sdb.end().catch(() => undefined);
        await cluster.restart('fast');
        pgRestarts++;
        db = await connect();
        sdb = s.stateDb ? await connectState() : db;
      }
      if (i === restartAfter && !running) await start();
      if (s.schema.compatibleAt === i) {
        log(`  op ${i}: first_name becomes varchar(300)`);
        await liftColumnList();
        await db.query('ALTER TABLE users ALTER COLUMN first_name TYPE varchar(300)');
        lifecycle.push('compatible');
      }
      if (s.schema.breakAt === i) {
        log(`  op ${i}: column bio dropped (the mapping stops)`);
        await liftColumnList();
        await db.query('ALTER TABLE users DROP COLUMN bio');
        lifecycle.push('break');
      }
      if (s.schema.fixAt === i) {
        log(`  op ${i}: column bio back, every instance restarted`);
        await fix();
      }
      if (s.schema.remapAt === i) {
        log(`  op ${i}: mapping changed (a field added), every instance restarted`);
        mapping = MAPPING_V2;
        configFile = configOf(mapping);
        await restartAll();
        lifecycle.push('remap');
      }
      if (s.schema.truncateAt === i) {
        log(`  op ${i}: TRUNCATE users (the guard holds its removals; the operator approves them)`);
        await db.query('TRUNCATE users');
        lifecycle.push('truncate');
        // The hold shows once the stream has written the removals; it may not come (too few contacts synced yet,
        // or no instance running): then the quiesce approves whatever is held.
        if (running) await waitFor(() => approveHeld(), { timeoutMs: 5_000, intervalMs: 200 }).catch(() => undefined);
      }
      await applyInTransaction(db, s.ops[i]!);
      // Let delivery take every other change on its own (more requests meet more faults); the rest coalesce.
      if (running && i % 2 === 0) {
        await waitFor(async () => ((await sdb.query(`SELECT count(*)::int AS n FROM wooxy_cdc.outbox WHERE state = 'pending'`)).rows[0] as { n: number }).n === 0, {
          timeoutMs: 1_000,
        }).catch(() => undefined);
      }
    }
    if (!running) await start();
    if (lifecycle.includes('break') && !lifecycle.includes('fix')) {
      log('  end: column bio back, every instance restarted');
      await fix();
    }

    // Quiesce: faults off, then wait for the list to equal the table.
    emulator.setFaults({ serverErrorRate: 0, timeoutRate: 0, rateLimitRate: 0, contactErrorRate: 0, webhookDropRate: 0 });
    const c = db;
    const st = sdb;
    const mapper = compileMapping(parseConfig({ postgres: { url }, wooxy: { accessToken: 'x' }, mappings: [mapping] }, {}).mappings[0]!, (contact) =>
      validateContact(contact, { mode: 'add', position: 0 }),
    );
    let diff: string[] = [];
    const converged = await waitFor(
      async () => {
        await approveHeld();
        const open = await st.query(`SELECT (SELECT count(*) FROM wooxy_cdc.outbox)::int + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS n`);
        if ((open.rows[0] as { n: number }).n !== 0) return false;
        diff = projectionDiff((await c.query('SELECT * FROM users')).rows, mapper, emulator);
        return diff.length === 0;
      },
      { timeoutMs: Number(process.env.SCENARIO_TIMEOUT_MS ?? 90_000), intervalMs: 200, message: 'convergence' },
    ).then(
      () => true,
      async () => {
        diff = projectionDiff((await c.query('SELECT * FROM users')).rows, mapper, emulator);
        return false;
      },
    );
    const dead = await st.query('SELECT count(*)::int AS n FROM wooxy_cdc.dead_letters');
    if ((dead.rows[0] as { n: number }).n > 0) {
      const { rows } = await st.query('SELECT source_key, op, error_code, human_error, attempts FROM wooxy_cdc.dead_letters ORDER BY source_key');
      log(`dead letters: ${JSON.stringify(rows)}`);
    }
    const stats = emulator.stats();
    const existed = emulator
      .requestLog()
      .map((r) => emulator.request(r.requestId ?? '')?.results.errors.filter((e) => e.error === 'ERR_CONTACT_EXISTS').length ?? 0)
      .reduce((a, b) => a + b, 0);
    if (!converged && process.env.SCENARIO_DUMP) {
      // What the connector's tables say of the contacts that differ (the key is the diff's userId).
      const keys = [...new Set(diff.map((d) => /^userId (\S+?)[.:]/.exec(d)?.[1]).filter(Boolean))] as string[];
      const dump = async (q: string) => JSON.stringify((await st.query(q, [keys])).rows).slice(0, 4000);
      log(`states: ${await dump(`SELECT source_key, left(row::text, 200) AS row, left(desired::text, 200) AS desired, left(synced::text, 200) AS synced, lsn::text, xid FROM wooxy_cdc.contact_state WHERE source_key = ANY($1)`)}`);
      log(`history: ${await dump(`SELECT source_key, op, outcome, sent_at, resolved_at FROM wooxy_cdc.history WHERE source_key = ANY($1) ORDER BY sent_at`)}`);
      if (running) log((running as RunningConnector).output());
      for (const o of outputs) log(`--- earlier instance ---\n${o}`);
    } else if (!converged && running) log((running as RunningConnector).output().split('\n').slice(-40).join('\n'));
    if (!converged && standby) log(`--- standby ---\n${(standby).output().split('\n').slice(-40).join('\n')}`);
    return {
      converged,
      diff: diff.slice(0, 20),
      kills,
      pgRestarts,
      lockCuts,
      lifecycle,
      approvals,
      faultsInjected:
        Object.values(stats.byEndpoint).reduce(
          (n, o) => n + (o.serverError ?? 0) + (o.timeout ?? 0) + (o.rateLimited ?? 0) + (o.savingError ?? 0) + (o.badResponse ?? 0),
          0,
        ) +
        stats.webhooks.dropped +
        stats.processing.failedRequests,
      requests: stats.requests,
      contactsExisted: existed,
      deadLetters: (dead.rows[0] as { n: number }).n,
      peakConcurrency: stats.peakConcurrency,
      ms: Date.now() - started,
    };
  } finally {
    for (const r of [running as RunningConnector | null, standby]) {
      if (!r) continue;
      r.proc.kill('SIGTERM');
      await r.exited;
    }
    await emulator.close();
    await db.end().catch(() => undefined);
    if (sdb !== db) await sdb.end().catch(() => undefined);
    const a = new pg.Client(cluster.url());
    await a.connect();
    await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]).catch(() => undefined);
    await waitFor(async () => {
      await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [dbName]);
      return true;
    }).catch(() => undefined);
    await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    if (s.stateDb) await a.query(`DROP DATABASE IF EXISTS ${stateName} WITH (FORCE)`).catch(() => undefined);
    await a.end();
  }
}
