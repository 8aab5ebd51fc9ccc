import type { BenchDb } from './pg.js';

export interface LoadOptions {
  /** Changes per second to hold. */
  rate: number;
  /** One transaction per tick, carrying the changes due by then. */
  tickMs?: number;
  /** First id this generator inserts (ids below it are left alone unless `mix` touches them). */
  firstId: number;
  /** Fractions of updates and deletes of existing rows; the rest are inserts. */
  mix?: { update: number; delete: number };
}

export interface Load {
  /** Stops and says how many rows it changed. */
  stop: () => Promise<{ changes: number; inserted: number; transactions: number; lateTicks: number }>;
}

/**
 * A steady writer: every tick, one transaction with the changes due since the start (so a slow tick is
 * caught up, not lost). Inserts take new ids; updates and deletes pick random live ids.
 */
export function steadyLoad(db: BenchDb, o: LoadOptions): Load {
  const tick = o.tickMs ?? 10;
  const mix = o.mix ?? { update: 0, delete: 0 };
  const started = performance.now();
  let changes = 0;
  let rows = 0;
  let transactions = 0;
  let lateTicks = 0;
  let nextId = o.firstId;
  const live: number[] = [];
  let running = true;
  let failure: Error | null = null;
  const loop = (async () => {
    while (running) {
      const due = Math.floor(((performance.now() - started) / 1000) * o.rate) - changes;
      if (due > 0) {
        const inserts: number[] = [];
        const updates = new Set<number>();
        const deletes = new Set<number>();
        for (let i = 0; i < due; i++) {
          const r = Math.random();
          const pick = live.length > 0 ? live[Math.floor(Math.random() * live.length)]! : null;
          if (pick !== null && r < mix.delete && !updates.has(pick)) deletes.add(pick);
          else if (pick !== null && r < mix.delete + mix.update && !deletes.has(pick)) updates.add(pick);
          else inserts.push(nextId++);
        }
        const stmts: string[] = [];
        if (inserts.length) stmts.push(`INSERT INTO users (id, email, first_name, last_name, plan) SELECT g, 'user' || g || '@example.com', 'First' || g, 'Last' || g, 'free' FROM unnest('{${inserts.join(',')}}'::bigint[]) g`);
        if (updates.size) stmts.push(`UPDATE users SET first_name = 'F' || id || '-' || ${changes}, updated_at = now() WHERE id = ANY('{${[...updates].join(',')}}'::bigint[])`);
        if (deletes.size) stmts.push(`DELETE FROM users WHERE id = ANY('{${[...deletes].join(',')}}'::bigint[])`);
        try {
          // One simple-protocol query: one transaction, one round trip.
          await db.query(stmts.length > 1 ? `BEGIN; ${stmts.join('; ')}; COMMIT` : stmts[0]!);
        } catch (e) {
          failure = e instanceof Error ? e : new Error('load statement failed', { cause: e });
          running = false;
          break;
        }
        for (const id of inserts) live.push(id);
        if (deletes.size) {
          for (let i = live.length - 1; i >= 0; i--) if (deletes.has(live[i]!)) live.splice(i, 1);
        }
        // A random pick that repeats within a tick is one row change, not two: count rows changed.
        changes += due;
        rows += inserts.length + updates.size + deletes.size;
        transactions++;
        if (due > ((o.rate * tick) / 1000) * 3) lateTicks++;
      }
      await new Promise((r) => setTimeout(r, tick));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      if (failure) throw failure;
      return { changes: rows, inserted: nextId - o.firstId, transactions, lateTicks };
    },
  };
}
