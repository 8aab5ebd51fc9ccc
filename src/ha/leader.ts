import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import { backoffDelay, RECONNECT } from '../lib/backoff.js';
import { Waiter } from '../lib/sleep.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { beginTerm } from '../store/fence.js';
import type { Fence } from '../store/tx.js';

/**
 * The advisory-lock key of a slot: the first 64 bits of sha256("wooxy-cdc:" + slot), as Postgres' signed
 * bigint. One slot, one leader: instances configured with the same slot elect one leader among themselves.
 */
export function leaderLockKey(slot: string): bigint {
  return createHash('sha256').update(`wooxy-cdc:${slot}`).digest().readBigInt64BE(0);
}

/** How pg_locks shows a bigint advisory key: the high half in classid, the low half in objid, objsubid 1. */
export function lockIdentity(key: bigint): { classid: number; objid: number } {
  const u = BigInt.asUintN(64, key);
  return { classid: Number(u >> 32n), objid: Number(u & 0xffffffffn) };
}

/** The session holding a slot's leader lock (pg_locks joined to pg_stat_activity), or null when none does. */
export interface LockHolder {
  pid: number;
  applicationName: string;
  clientAddr: string | null;
  backendStart: Date | null;
}

export async function lockHolder(client: Pick<pg.ClientBase, 'query'>, slot: string): Promise<LockHolder | null> {
  const { classid, objid } = lockIdentity(leaderLockKey(slot));
  const { rows } = await client.query<{ pid: number; application_name: string | null; client_addr: string | null; backend_start: Date | null }>(
    `SELECT l.pid, a.application_name, a.client_addr::text AS client_addr, a.backend_start
     FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1
     LIMIT 1`,
    [classid, objid],
  );
  const r = rows[0];
  return r ? { pid: r.pid, applicationName: r.application_name ?? '', clientAddr: r.client_addr, backendStart: r.backend_start } : null;
}

export type Role = 'starting' | 'standby' | 'leader' | 'stopped';

export interface ElectionOptions {
  url: string;
  slot: string;
  /** The connector's schema: the leader epoch lives there. */
  schema: string;
  applicationName: string;
  /** Connection start-up options (durable commits: the epoch is committed on this connection). */
  sessionOptions?: string;
  /** How often a standby tries the lock, and how often the leader checks that its lock connection lives. */
  pollIntervalMs: number;
  log: Logger;
  metrics: Metrics;
  /**
   * Starts the work of a term; runs while the lock is held. `fence` carries the term's epoch: every write of
   * the work is fenced with it. When it throws, onDeposed runs and the lock is released.
   */
  onElected: (fence: Fence) => Promise<void>;
  /** Stops the work: before the lock is released (stop), or once it is known to be lost. */
  onDeposed: (reason: string) => Promise<void>;
}

/**
 * Leader election through a session-level advisory lock on a dedicated connection: whoever holds
 * pg_try_advisory_lock(key(slot)) works, the others poll as standbys. The lock lives exactly as long as the
 * leader's session, so a leader that dies (or whose connection dies) frees it, and a standby takes over
 * within one poll interval. The leader watches its lock connection and stops working the moment it ends:
 * without the lock it could no longer tell that it is alone.
 *
 * Session keepalives are tightened on the lock connection so that Postgres itself notices a leader whose host
 * vanished (no FIN, no RST) within about 25 s, instead of the server's default of hours.
 *
 * The lock alone cannot stop a leader that has not noticed it lost it (its pipeline drains for a while):
 * every election therefore raises a leader epoch in Postgres (src/store/fence.ts), waiting for the old
 * epoch's transactions in progress, and every write of a pipeline is fenced with its epoch.
 */
export class LeaderElection {
  readonly key: bigint;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly waiter = new Waiter();
  private currentRole: Role = 'starting';
  private standbyHealthy = false;

  constructor(private readonly opts: ElectionOptions) {
    this.key = leaderLockKey(opts.slot);
    opts.metrics.leader.set(0);
  }

  get role(): Role {
    return this.currentRole;
  }

  /** A standby is healthy while its lock connection answers. */
  get healthy(): boolean {
    return this.currentRole === 'leader' || (this.currentRole === 'standby' && this.standbyHealthy);
  }

  /**
   * Resolves once this instance knows its role: a standby, or the leader with onElected done. Rejects when
   * the database cannot be reached, or when the first onElected fails (a misconfiguration should fail the
   * start, not loop); later failures are logged and retried with backoff.
   */
  start(): Promise<void> {
    if (this.loop) throw new Error('election already started');
    return new Promise<void>((resolve, reject) => {
      this.loop = this.run(resolve, reject);
    });
  }

  /** Stops the work (onDeposed) if leading, then releases the lock by closing its connection. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.waiter.wake();
    await this.loop;
    this.currentRole = 'stopped';
  }

  private async run(resolve: () => void, reject: (e: unknown) => void): Promise<void> {
    const { log, metrics } = this.opts;
    let settled = false;
    const settle = (e?: unknown) => {
      if (settled) return;
      settled = true;
      if (e === undefined) resolve();
      else reject(e);
    };
    let attempt = 0;
    while (!this.stopped) {
      let client: pg.Client | null = null;
      try {
        client = await this.connect();
        const acquired = await this.waitForLock(client, () => {
          attempt = 0;
          settle();
        });
        if (!acquired) break;
        const epoch = await beginTerm(client, this.opts.schema, this.opts.slot, this.holderName());
        this.currentRole = 'leader';
        metrics.leader.set(1);
        metrics.leaderTransitions.inc({ direction: 'to' });
        log.info({ epoch }, 'elected leader: this instance holds the lock and starts working');
        try {
          await this.opts.onElected({ slot: this.opts.slot, epoch });
        } catch (e) {
          await this.depose('failed to start');
          if (!settled) {
            this.stopped = true;
            settle(e);
            break;
          }
          throw e;
        }
        settle();
        attempt = 0;
        const reason = await this.watch(client);
        if (reason !== 'stopping') log.error({ reason }, 'leadership lost: stopping work at once');
        await this.depose(reason);
      } catch (e) {
        this.standbyHealthy = false;
        if (!settled) {
          this.stopped = true;
          settle(e);
          break;
        }
        log.warn({ error: (e as Error).message, code: (e as { code?: string }).code }, 'leader election failed; retrying');
      } finally {
        // Closing the session releases the lock, if it held it.
        await client?.end().catch(() => undefined);
      }
      if (this.stopped) break;
      await this.waiter.wait(backoffDelay(RECONNECT, attempt++));
    }
    settle();
    if (this.currentRole === 'leader') await this.depose('stopping');
    this.currentRole = 'stopped';
  }

  private async depose(reason: string): Promise<void> {
    if (this.currentRole !== 'leader') return;
    this.currentRole = this.stopped ? 'stopped' : 'starting';
    this.opts.metrics.leader.set(0);
    this.opts.metrics.leaderTransitions.inc({ direction: 'from' });
    try {
      await this.opts.onDeposed(reason);
    } catch (e) {
      this.opts.log.error({ err: e }, 'stopping the work after leadership ended failed');
    }
  }

  /** How this instance names itself to Postgres (application_name) and in the leader table. */
  private holderName(): string {
    return `${this.opts.applicationName} ${hostname()} pid ${process.pid}`.slice(0, 63);
  }

  private async connect(): Promise<pg.Client> {
    const name = this.holderName();
    const client = new pg.Client({
      connectionString: this.opts.url,
      application_name: name,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      query_timeout: Math.max(5_000, this.opts.pollIntervalMs * 3),
      ...(this.opts.sessionOptions ? { options: this.opts.sessionOptions } : {}),
    });
    // watch() reports errors while leading; without a listener an 'error' would crash the process.
    client.on('error', () => undefined);
    await client.connect();
    await client.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3').catch(() => undefined);
    return client;
  }

  /** Polls the lock; true once held, false when stopped first. `onStandby` runs after each unsuccessful try. */
  private async waitForLock(client: pg.Client, onStandby: () => void): Promise<boolean> {
    const { log, slot } = this.opts;
    while (!this.stopped) {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [this.key.toString()]);
      if (rows[0]?.ok) return true;
      if (this.currentRole !== 'standby') {
        const holder = await lockHolder(client, slot).catch(() => null);
        log.info({ leader: holder ? `${holder.applicationName} (backend pid ${holder.pid})` : 'unknown' }, 'standby: another instance is the leader; waiting to take over');
      }
      this.currentRole = 'standby';
      this.standbyHealthy = true;
      onStandby();
      await this.waiter.wait(this.opts.pollIntervalMs);
    }
    return false;
  }

  /** Resolves with the reason leadership ended: the lock connection failed or closed, or stop() was called. */
  private watch(client: pg.Client): Promise<string> {
    return new Promise<string>((resolve) => {
      let done = false;
      let timer: NodeJS.Timeout | null = null;
      const finish = (reason: string) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        client.off('error', onError);
        client.off('end', onEnd);
        this.wake = null;
        resolve(reason);
      };
      const onError = (e: Error) => finish(`lock connection failed: ${e.message}`);
      const onEnd = () => finish('lock connection closed');
      client.on('error', onError);
      client.on('end', onEnd);
      this.wake = () => finish('stopping');
      if (this.stopped) return finish('stopping');
      const check = () => {
        if (done) return;
        timer = setTimeout(() => {
          client.query('SELECT 1').then(check, (e: Error) => finish(`lock connection check failed: ${e.message}`));
        }, this.opts.pollIntervalMs);
      };
      check();
    });
  }
}
