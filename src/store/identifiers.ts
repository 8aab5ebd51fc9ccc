import { sql } from 'kysely';
import type { Identifiers } from '../delivery/plan.js';
import { identifiersOf } from '../delivery/plan.js';
import type { ContactPayload } from '../mapping/mapper.js';
import type { StoreContext } from './context.js';
import type { Trx } from './tx.js';

/** A contact whose synced state holds an identifier another contact was refused: what it holds, and what it wants. */
export interface Holder {
  mapping: string;
  key: string;
  /** Its identifiers at Wooxy as far as we know (contact_state.synced). */
  synced: Identifiers;
  /** Its identifiers as its row wants them now (contact_state.desired): one it no longer wants, it is giving up. */
  desired: Identifiers;
}

/**
 * The contacts of `mapping` whose synced state holds one of `wanted` (emails compared case-insensitively, as
 * Wooxy compares them), for contacts Wooxy refused because an identifier belongs to another contact.
 *
 * Only asked when Wooxy says so (ERR_CONTACT_EXISTS, ERR_CONTACT_DUPLICATION_ATTEMPT), never while planning:
 * it reads contact_state by the content of `synced`, which has no index (one on synced's expressions would
 * make the rewrite of `synced` after every call a non-HOT update), so it scans the mapping's states; once per
 * such answer and mapping it is affordable, once per planned contact it would not be.
 *
 * FOR SHARE: until this transaction ends, no answer can change what the holders hold. A dead letter naming
 * one of them as the blocker is then either written before the holder's synced state changes, and found by
 * that change's settleDeadLetters, or not written at all (see settleDeadLetters in dead-letters.ts). These
 * share locks come after the request's own state rows, so outside the key order of context.ts: two results
 * whose contacts hold each other's identifiers could deadlock, and the loser is retried whole (transaction()),
 * a cost paid only on such refusals.
 */
export async function findHolders(ctx: StoreContext, trx: Trx, mapping: string, wanted: readonly Identifiers[]): Promise<Holder[]> {
  const emails = new Set<string>();
  const phones = new Set<string>();
  const userIds = new Set<string>();
  for (const ids of wanted) {
    if (ids.email) emails.add(ids.email.toLowerCase());
    if (ids.phoneNumber) phones.add(ids.phoneNumber);
    if (ids.userId) userIds.add(ids.userId);
  }
  if (emails.size + phones.size + userIds.size === 0) return [];
  const { rows } = await sql<{ source_key: string; synced: ContactPayload | null; desired: ContactPayload | null }>`
    SELECT s.source_key, s.synced, s.desired FROM ${ctx.t.state} s
    WHERE s.mapping = ${mapping} AND s.synced IS NOT NULL
      AND (lower(s.synced ->> 'email') = ANY(${[...emails]}::text[]) OR s.synced ->> 'phoneNumber' = ANY(${[...phones]}::text[])
           OR s.synced ->> 'userId' = ANY(${[...userIds]}::text[]))
    ORDER BY s.source_key
    FOR SHARE OF s`.execute(trx);
  return rows.map((r) => ({ mapping, key: r.source_key, synced: identifiersOf(r.synced), desired: identifiersOf(r.desired) }));
}
