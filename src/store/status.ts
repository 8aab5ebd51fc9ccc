import type { StoreContext } from './context.js';

/** Outbox entries by state (pending, inflight), for the monitor's gauge. */
export async function outboxDepth(ctx: StoreContext): Promise<Record<'pending' | 'inflight', number>> {
  const rows = await ctx.db
    .selectFrom('outbox')
    .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy('state')
    .execute();
  const depth = { pending: 0, inflight: 0 };
  for (const r of rows) depth[r.state] = Number(r.n);
  return depth;
}

/** Entries of mappings that are not configured any more: never claimed, never dropped, until an operator decides. */
export async function orphanedEntries(ctx: StoreContext, configured: readonly string[]): Promise<Array<{ mapping: string; pending: number; inflight: number }>> {
  let q = ctx.db
    .selectFrom('outbox')
    .select(['mapping', (eb) => eb.fn.countAll<string>().filterWhere('state', '=', 'pending').as('pending'), (eb) => eb.fn.countAll<string>().filterWhere('state', '=', 'inflight').as('inflight')])
    .groupBy('mapping')
    .orderBy('mapping');
  if (configured.length > 0) q = q.where('mapping', 'not in', [...configured]);
  const rows = await q.execute();
  return rows.map((r) => ({ mapping: r.mapping, pending: Number(r.pending), inflight: Number(r.inflight) }));
}
