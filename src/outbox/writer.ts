import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';
import type { ContactPayload, Mapper, Row } from '../mapping/mapper.js';
import type { Lsn } from '../source/lsn.js';
import type { ChangeSink, RowChange } from '../source/types.js';
import { PgCodes } from '../errors.js';
import { failpoint } from '../failpoints.js';
import { recordInvalidRows, type InvalidRow } from './dead-letters.js';
import { desiredOf } from './desired.js';
import { takeWriterTurn } from './writer-lock.js';

export interface WriteOutcome {
  /** Contacts whose desired state changed: one pending outbox entry each (coalesced). */
  enqueued: number;
  /** Changes that left the desired state as it was (e.g. only unmapped columns changed). */
  unchanged: number;
  deadLettered: number;
}

interface Working {
  row: Row | null;
  desired: ContactPayload | null;
  /** Whether `desired` is the contact's current desired state (loaded, or set earlier in the batch). */
  desiredKnown: boolean;
  /** The latest change was invalid (dead-lettered) and the desired state is unknown here: keep the stored one. */
  keepDesired: boolean;
  touched: boolean;
  lsn: Lsn;
  /** Top-level xid of the latest change (null when the change did not say). */
  xid: number | null;
}

/**
 * Applies row changes to the per-contact state and the coalescing outbox, and records the durable LSN, all
 * in one transaction: either every effect of a batch is durable together with its LSN, or none is.
 * Every statement is set-based (unnest), so a batch costs a handful of round trips whatever its size.
 */
export class OutboxWriter implements ChangeSink {
  private readonly t: {
    state: ReturnType<typeof sql.id>;
    outbox: ReturnType<typeof sql.id>;
    repl: ReturnType<typeof sql.id>;
  };

  private enqueuedSinceAnalyze = 0;
  private nextAnalyzeAfter = 10_000;
  private analyzing = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly schema: string,
    private readonly mappers: ReadonlyMap<string, Mapper>,
    private readonly slot: string,
  ) {
    this.t = {
      state: sql.id(schema, 'contact_state'),
      outbox: sql.id(schema, 'outbox'),
      repl: sql.id(schema, 'replication_state'),
    };
  }

  /** The LSN recorded as durable for this slot ('0/0' when none). */
  async durableLsn(): Promise<Lsn> {
    const { rows } = await sql<{ lsn: string }>`SELECT durable_lsn::text AS lsn FROM ${this.t.repl} WHERE slot = ${this.slot}`.execute(this.db);
    return rows[0]?.lsn ?? '0/0';
  }

  async write(changes: readonly RowChange[], durableLsn: Lsn | null): Promise<WriteOutcome> {
    const outcome = await this.writeOnce(changes, durableLsn);
    this.analyzeAfterGrowth(outcome.enqueued);
    return outcome;
  }

  private async writeOnce(changes: readonly RowChange[], durableLsn: Lsn | null): Promise<WriteOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute((trx) => this.writeIn(trx, changes, durableLsn));
      } catch (e) {
        // Delivery and reconciliation lock some of the same rows (a contact's pending entry, its state). A
        // deadlock victim is rolled back whole, so nothing of this batch is durable and it can simply run
        // again; failing instead would cost the stream a reconnect and a replay from the slot.
        if ((e as { code?: unknown }).code !== PgCodes.DEADLOCK_DETECTED || attempt >= 3) throw e;
      }
    }
  }

  /**
   * Refreshes the planner's statistics of the outbox and contact states once this process has enqueued 10k
   * entries, then again after twice as many more each time. A backlog fills a fresh outbox far faster than autovacuum analyzes it (once a
   * minute at best), and without statistics Postgres takes most entries for in-flight ones: delivery's
   * statements that look up a batch of entries by key then hash-join the whole backlog instead of probing
   * the primary key, once per batch, quadratic over the backlog. Doubling keeps it to a few ANALYZEs of
   * sampled rows per process; a role that does not own the tables gets a warning from Postgres, not an error.
   * It runs beside the stream, on another connection: statistics only help the planner, so neither waiting
   * for them nor failing to refresh them may hold up or fail a write that committed.
   */
  private analyzeAfterGrowth(enqueued: number): void {
    this.enqueuedSinceAnalyze += enqueued;
    if (this.enqueuedSinceAnalyze < this.nextAnalyzeAfter || this.analyzing) return;
    this.enqueuedSinceAnalyze = 0;
    this.nextAnalyzeAfter *= 2;
    this.analyzing = true;
    void sql`ANALYZE ${this.t.outbox}, ${this.t.state}`
      .execute(this.db)
      .catch(() => undefined)
      .finally(() => (this.analyzing = false));
  }

  private async writeIn(trx: Transaction<Database>, changes: readonly RowChange[], durableLsn: Lsn | null): Promise<WriteOutcome> {
    const outcome: WriteOutcome = { enqueued: 0, unchanged: 0, deadLettered: 0 };
    await takeWriterTurn(trx, this.schema);
    const working = await this.load(trx, changes);
    const dead: InvalidRow[] = [];
    const truncated: Array<{ mapping: string; lsn: Lsn; xid: number | null }> = [];

    for (const change of changes) {
      const mapper = this.mappers.get(change.mapping);
      if (!mapper) continue;
      if (change.kind === 'truncate') {
        truncated.push({ mapping: change.mapping, lsn: change.lsn, xid: change.xid ?? null });
        for (const [k, w] of working) {
          if (k.startsWith(`${change.mapping}\u0000`)) Object.assign(w, { row: null, desired: null, desiredKnown: true, keepDesired: false, touched: true, lsn: change.lsn, xid: change.xid ?? null });
        }
        continue;
      }
      const w = working.get(`${change.mapping}\u0000${change.key}`)!;
      let row: Row | null;
      if (change.kind === 'delete') row = null;
      else {
        row = { ...change.row };
        // An unchanged TOASTed column arrives as undefined: keep the value last seen (loaded, or earlier in
        // this batch). One never seen stays undefined: the payload leaves that field as Wooxy has it.
        if (change.kind === 'update') for (const [col, v] of Object.entries(row)) if (v === undefined && w.row && col in w.row) row[col] = w.row[col];
      }
      w.row = row;
      w.touched = true;
      w.lsn = change.lsn;
      w.xid = change.xid ?? null;
      const d = desiredOf(mapper, row);
      if (!d.ok) {
        dead.push({ mapping: change.mapping, key: change.key, op: change.kind === 'insert' ? 'add' : 'update', payload: row, message: d.message });
        w.keepDesired = !w.desiredKnown; // the contact keeps its last valid desired state
        continue;
      }
      w.desired = d.desired;
      w.desiredKnown = true;
      w.keepDesired = false;
    }

    for (const { mapping, lsn, xid } of truncated) {
      // Every contact of the mapping that is (or is about to be) in the list gets a pending removal.
      const r = await sql`
        INSERT INTO ${this.t.outbox} (mapping, source_key, state, payload, lsn)
        SELECT mapping, source_key, 'pending', NULL, ${lsn}::pg_lsn FROM ${this.t.state}
        WHERE mapping = ${mapping} AND (synced IS NOT NULL OR desired IS NOT NULL)
        ON CONFLICT (mapping, source_key, state) DO UPDATE SET payload = NULL, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), updated_at = now()`.execute(trx);
      outcome.enqueued += Number(r.numAffectedRows ?? 0);
      await sql`UPDATE ${this.t.state} SET row = NULL, desired = NULL, lsn = ${lsn}::pg_lsn, xid = ${xid}::bigint, updated_at = now() WHERE mapping = ${mapping}`.execute(trx);
    }

    const records = [];
    for (const [key, w] of working) {
      if (!w.touched) continue;
      const [m, k] = key.split('\u0000') as [string, string];
      records.push({ m, k, r: w.row, d: w.desired, kd: w.keepDesired, l: w.lsn, x: w.xid });
    }
    if (records.length > 0) {
      // One statement and one JSON parameter per batch (Postgres parses a JSON document far faster than
      // arrays of escaped JSON). `old` reads the states before this statement changes them (every part of
      // the statement sees the same snapshot), so a contact whose desired payload is unchanged (only unmapped
      // columns changed) gets no outbox entry; jsonb equality ignores key order. It is a primary-key probe per
      // contact on purpose: as a join, the planner (which guesses 100 rows for jsonb_to_recordset) re-scanned
      // the whole batch for every contact that already had a state (16 s for a batch of 4,000 updates).
      // Coalescing: a contact's pending entry is replaced by its latest desired state; an in-flight entry is
      // another row, left alone, and the new state is sent once it resolves. Rows are written in key order,
      // the order delivery locks pending entries in too: no lock cycles.
      const r = await sql<{ n: number }>`
        WITH x AS (
          SELECT j.m, j.k, NULLIF(j.r, 'null') AS r, NULLIF(j.d, 'null') AS d, j.kd, j.l, j.x,
            (SELECT s.desired FROM ${this.t.state} s WHERE s.mapping = j.m AND s.source_key = j.k) AS old
          FROM jsonb_to_recordset(${JSON.stringify(records)}::jsonb) AS j(m text, k text, r jsonb, d jsonb, kd boolean, l pg_lsn, x bigint)
        ), state AS (
          INSERT INTO ${this.t.state} AS s (mapping, source_key, row, desired, lsn, xid)
          SELECT m, k, r, d, l, x FROM x WHERE NOT kd ORDER BY m, k
          ON CONFLICT (mapping, source_key) DO UPDATE
            SET row = EXCLUDED.row, desired = EXCLUDED.desired, lsn = EXCLUDED.lsn, xid = EXCLUDED.xid, updated_at = now()
        ), kept AS (
          INSERT INTO ${this.t.state} AS s (mapping, source_key, row, desired, lsn, xid)
          SELECT m, k, r, NULL, l, x FROM x WHERE kd ORDER BY m, k
          ON CONFLICT (mapping, source_key) DO UPDATE SET row = EXCLUDED.row, lsn = EXCLUDED.lsn, xid = EXCLUDED.xid, updated_at = now()
        ), queued AS (
          INSERT INTO ${this.t.outbox} (mapping, source_key, state, payload, lsn)
          SELECT m, k, 'pending', d, l FROM x
          WHERE NOT kd AND old IS DISTINCT FROM d
          ORDER BY m, k
          ON CONFLICT (mapping, source_key, state) DO UPDATE
            SET payload = EXCLUDED.payload, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()
          RETURNING 1
        )
        SELECT count(*)::int AS n FROM queued`.execute(trx);
      const n = r.rows[0]?.n ?? 0;
      outcome.enqueued += n;
      outcome.unchanged = records.length - n;
    }

    await recordInvalidRows(trx, this.schema, dead);
    outcome.deadLettered = dead.length;

    if (durableLsn) {
      await sql`
        INSERT INTO ${this.t.repl} (slot, durable_lsn) VALUES (${this.slot}, ${durableLsn}::pg_lsn)
        ON CONFLICT (slot) DO UPDATE SET durable_lsn = GREATEST(${this.t.repl}.durable_lsn, EXCLUDED.durable_lsn), updated_at = now()`.execute(trx);
    }
    failpoint('outbox.before-commit');
    return outcome;
  }

  /** Current state of every contact the batch touches, in one query. */
  private async load(trx: Transaction<Database>, changes: readonly RowChange[]): Promise<Map<string, Working>> {
    const working = new Map<string, Working>();
    // Only an update that omits an unchanged TOASTed column needs the stored row; everything else is
    // computed from the change, and unchanged payloads are filtered in SQL. So the common batch reads nothing.
    const needed = new Map<string, Set<string>>();
    for (const c of changes) {
      if (c.kind === 'truncate') continue;
      const key = `${c.mapping}\u0000${c.key}`;
      if (!working.has(key)) working.set(key, { row: null, desired: null, desiredKnown: false, keepDesired: false, touched: false, lsn: c.lsn, xid: null });
      if (c.kind === 'update' && Object.values(c.row).some((v) => v === undefined)) {
        const keys = needed.get(c.mapping) ?? new Set<string>();
        keys.add(c.key);
        needed.set(c.mapping, keys);
      }
    }
    for (const [mapping, keys] of needed) {
      const { rows } = await sql<{ source_key: string; row: Row | null; desired: ContactPayload | null }>`
        SELECT source_key, row, desired FROM ${this.t.state} WHERE mapping = ${mapping} AND source_key = ANY(${[...keys]}::text[])`.execute(trx);
      for (const r of rows) {
        const w = working.get(`${mapping}\u0000${r.source_key}`)!;
        w.row = r.row;
        w.desired = r.desired;
        w.desiredKnown = true;
      }
    }
    return working;
  }
}
