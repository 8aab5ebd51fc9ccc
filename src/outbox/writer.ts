import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';
import type { ContactPayload, Mapper, Row } from '../mapping/mapper.js';
import type { Lsn } from '../source/lsn.js';
import type { ChangeSink, RowChange } from '../source/types.js';
import { failpoint } from '../failpoints.js';
import { sameJson } from './json.js';

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
  dirty: boolean;
  touched: boolean;
  lsn: Lsn;
}

interface DeadLetter {
  mapping: string;
  key: string;
  op: string;
  payload: Row | null;
  message: string;
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
    dead: ReturnType<typeof sql.id>;
    repl: ReturnType<typeof sql.id>;
  };

  constructor(
    private readonly db: Kysely<Database>,
    schema: string,
    private readonly mappers: ReadonlyMap<string, Mapper>,
    private readonly slot: string,
  ) {
    this.t = {
      state: sql.id(schema, 'contact_state'),
      outbox: sql.id(schema, 'outbox'),
      dead: sql.id(schema, 'dead_letters'),
      repl: sql.id(schema, 'replication_state'),
    };
  }

  /** The LSN recorded as durable for this slot ('0/0' when none). */
  async durableLsn(): Promise<Lsn> {
    const { rows } = await sql<{ lsn: string }>`SELECT durable_lsn::text AS lsn FROM ${this.t.repl} WHERE slot = ${this.slot}`.execute(this.db);
    return rows[0]?.lsn ?? '0/0';
  }

  async write(changes: readonly RowChange[], durableLsn: Lsn | null): Promise<WriteOutcome> {
    return this.db.transaction().execute((trx) => this.writeIn(trx, changes, durableLsn));
  }

  private async writeIn(trx: Transaction<Database>, changes: readonly RowChange[], durableLsn: Lsn | null): Promise<WriteOutcome> {
    const outcome: WriteOutcome = { enqueued: 0, unchanged: 0, deadLettered: 0 };
    const working = await this.load(trx, changes);
    const dead: DeadLetter[] = [];
    const truncated: Array<{ mapping: string; lsn: Lsn }> = [];

    for (const change of changes) {
      const mapper = this.mappers.get(change.mapping);
      if (!mapper) continue;
      if (change.kind === 'truncate') {
        truncated.push({ mapping: change.mapping, lsn: change.lsn });
        for (const [k, w] of working) {
          if (k.startsWith(`${change.mapping}\u0000`)) Object.assign(w, { row: null, desired: null, dirty: true, touched: true, lsn: change.lsn });
        }
        continue;
      }
      const k = `${change.mapping}\u0000${change.key}`;
      const w = working.get(k)!;
      let row: Row | null;
      if (change.kind === 'delete') row = null;
      else if (change.kind === 'insert') row = { ...change.row };
      else {
        // An unchanged TOASTed column arrives as undefined: keep the value last seen.
        row = { ...change.row };
        for (const [col, v] of Object.entries(row)) if (v === undefined && w.row && col in w.row) row[col] = w.row[col];
      }
      w.row = row;
      w.touched = true;
      w.lsn = change.lsn;
      let desired: ContactPayload | null = null;
      if (row && mapper.matches(row)) {
        const projection = mapper.project(row);
        if (!projection.ok) {
          dead.push({ mapping: change.mapping, key: change.key, op: w.desired ? 'update' : 'add', payload: row, message: projection.problems.join('; ') });
          continue; // the contact keeps its last valid desired state
        }
        desired = projection.contact;
      }
      if (sameJson(desired, w.desired)) {
        outcome.unchanged++;
        continue;
      }
      w.desired = desired;
      w.dirty = true;
    }

    for (const { mapping, lsn } of truncated) {
      // Every contact of the mapping that is (or is about to be) in the list gets a pending removal.
      const r = await sql`
        INSERT INTO ${this.t.outbox} (mapping, source_key, state, payload, lsn)
        SELECT mapping, source_key, 'pending', NULL, ${lsn}::pg_lsn FROM ${this.t.state}
        WHERE mapping = ${mapping} AND (synced IS NOT NULL OR desired IS NOT NULL)
        ON CONFLICT (mapping, source_key, state) DO UPDATE SET payload = NULL, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), updated_at = now()`.execute(trx);
      outcome.enqueued += Number(r.numAffectedRows ?? 0);
      await sql`UPDATE ${this.t.state} SET row = NULL, desired = NULL, lsn = ${lsn}::pg_lsn, updated_at = now() WHERE mapping = ${mapping}`.execute(trx);

    }

    const touched = [...working.entries()].filter(([, w]) => w.touched);
    if (touched.length > 0) {
      const cols = { m: [] as string[], k: [] as string[], row: [] as (string | null)[], desired: [] as (string | null)[], lsn: [] as string[] };
      for (const [key, w] of touched) {
        const [m, k] = key.split('\u0000') as [string, string];
        cols.m.push(m);
        cols.k.push(k);
        cols.row.push(w.row ? JSON.stringify(w.row) : null);
        cols.desired.push(w.desired ? JSON.stringify(w.desired) : null);
        cols.lsn.push(w.lsn);
      }
      await sql`
        INSERT INTO ${this.t.state} (mapping, source_key, row, desired, lsn)
        SELECT * FROM unnest(${cols.m}::text[], ${cols.k}::text[], ${cols.row}::jsonb[], ${cols.desired}::jsonb[], ${cols.lsn}::pg_lsn[])
        ON CONFLICT (mapping, source_key) DO UPDATE
          SET row = EXCLUDED.row, desired = EXCLUDED.desired, lsn = EXCLUDED.lsn, updated_at = now()`.execute(trx);
    }

    const dirty = touched.filter(([, w]) => w.dirty);
    if (dirty.length > 0) {
      const m: string[] = [];
      const k: string[] = [];
      const payload: (string | null)[] = [];
      const lsn: string[] = [];
      for (const [key, w] of dirty) {
        const [mm, kk] = key.split('\u0000') as [string, string];
        m.push(mm);
        k.push(kk);
        payload.push(w.desired ? JSON.stringify(w.desired) : null);
        lsn.push(w.lsn);
      }
      // Coalescing: the pending entry of a contact is replaced by its latest desired state. An in-flight
      // entry is a separate row and is left alone: the new state is sent after that request resolves.
      await sql`
        INSERT INTO ${this.t.outbox} (mapping, source_key, state, payload, lsn)
        SELECT m, k, 'pending', p, l FROM unnest(${m}::text[], ${k}::text[], ${payload}::jsonb[], ${lsn}::pg_lsn[]) AS u(m, k, p, l)
        ON CONFLICT (mapping, source_key, state) DO UPDATE
          SET payload = EXCLUDED.payload, lsn = EXCLUDED.lsn, attempts = 0, next_attempt_at = now(), last_error = NULL, updated_at = now()`.execute(trx);
      outcome.enqueued += dirty.length;
    }

    if (dead.length > 0) {
      await sql`
        INSERT INTO ${this.t.dead} (mapping, source_key, op, payload, error_code, human_error)
        SELECT m, k, o, p, 'ROW_INVALID', h FROM unnest(${dead.map((d) => d.mapping)}::text[], ${dead.map((d) => d.key)}::text[], ${dead.map((d) => d.op)}::text[],
          ${dead.map((d) => (d.payload ? JSON.stringify(d.payload) : null))}::jsonb[], ${dead.map((d) => d.message)}::text[]) AS u(m, k, o, p, h)
        ON CONFLICT (mapping, source_key) DO UPDATE
          SET op = EXCLUDED.op, payload = EXCLUDED.payload, error_code = EXCLUDED.error_code, human_error = EXCLUDED.human_error,
              attempts = ${this.t.dead}.attempts + 1, last_seen = now()`.execute(trx);
      outcome.deadLettered = dead.length;
    }

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
    const m: string[] = [];
    const k: string[] = [];
    for (const c of changes) {
      if (c.kind === 'truncate') continue;
      const key = `${c.mapping}\u0000${c.key}`;
      if (working.has(key)) continue;
      working.set(key, { row: null, desired: null, dirty: false, touched: false, lsn: c.lsn });
      m.push(c.mapping);
      k.push(c.key);
    }
    if (m.length === 0) return working;
    const { rows } = await sql<{ mapping: string; source_key: string; row: Row | null; desired: ContactPayload | null }>`
      SELECT s.mapping, s.source_key, s.row, s.desired
      FROM unnest(${m}::text[], ${k}::text[]) AS u(m, k)
      JOIN ${this.t.state} s ON s.mapping = u.m AND s.source_key = u.k`.execute(trx);
    for (const r of rows) {
      const w = working.get(`${r.mapping}\u0000${r.source_key}`)!;
      w.row = r.row;
      w.desired = r.desired;
    }
    return working;
  }
}
