import { sql } from 'kysely';
import type { DbHandle } from '../db/index.js';
import { identifiersOf, type Identifiers } from '../delivery/plan.js';
import type { ContactPayload } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RequestStatus, ResultContact } from '../wooxy/types.js';

export type ApplyOutcome = 'applied' | 'still-new' | 'duplicate' | 'unknown';

interface Inflight {
  mapping: string;
  source_key: string;
  payload: ContactPayload | null;
  sent_op: 'add' | 'update' | 'remove';
  lsn: string;
  attempts: number;
  maybe_ids: Identifiers | null;
}

type Verdict =
  | { kind: 'success' }
  | { kind: 'retry'; hint: 'add' | 'update' | 'replace' | null; delayMs: number; code: string; human: string }
  | { kind: 'dead'; code: string; human: string };

export interface ApplyOptions {
  handle: DbHandle;
  log: Logger;
  metrics: Metrics;
  /** A contact whose requests keep failing is dead-lettered after this many attempts. */
  maxAttempts: number;
}

/** min(60 s, 0.5 s·2^n) with jitter: the backoff of a contact whose request failed. */
export function retryDelayMs(attempts: number): number {
  return Math.round(Math.min(60_000, 500 * 2 ** attempts) * (0.5 + Math.random() / 2));
}

/**
 * The add ⇄ update fallback goes at once the first time. Repeated, it means another contact holds one of the
 * identifiers (the add finds it by email or phone, the update by userId finds nothing) until that contact's
 * own change lands: back off, or the ping-pong burns every attempt in seconds and dead-letters a contact
 * that only had to wait (the convergence test found it: 50 attempts in 2 s).
 */
function fallbackDelayMs(attempts: number): number {
  return attempts <= 1 ? 0 : retryDelayMs(attempts - 1);
}

/**
 * Per-contact rules for a finished request (issue 5): success records what Wooxy now holds; an add told
 * the contact exists is sent again as an update, an update told it does not exist as an add; a remove of a
 * missing contact is done; ERR_SYSTEM_ERROR and failed requests retry with backoff; identifiers held by
 * another contact wait (the holder may be releasing them) and then break the cycle by remove-and-add; any
 * other error is a dead letter with Wooxy's humanError.
 */
export function verdictFor(op: Inflight['sent_op'], attempts: number, error: { error: string; humanError: string } | null): Verdict {
  if (!error) return { kind: 'success' };
  const { error: code, humanError: human } = error;
  switch (code) {
    case 'ERR_CONTACT_EXISTS':
      return op === 'add' ? { kind: 'retry', hint: 'update', delayMs: fallbackDelayMs(attempts), code, human } : { kind: 'dead', code, human };
    case 'ERR_CONTACT_NOT_EXISTS':
      if (op === 'remove') return { kind: 'success' };
      return { kind: 'retry', hint: 'add', delayMs: fallbackDelayMs(attempts), code, human };
    case 'ERR_SYSTEM_ERROR':
    case 'UNRESOLVED':
      return { kind: 'retry', hint: null, delayMs: retryDelayMs(attempts), code, human };
    case 'ERR_CONTACT_DUPLICATION_ATTEMPT':
      return { kind: 'retry', hint: attempts >= 2 ? 'replace' : null, delayMs: retryDelayMs(attempts), code, human };
    default:
      return { kind: 'dead', code, human };
  }
}

function resultKeys(c: ResultContact): string[] {
  return [c.userId && `userId:${c.userId}`, c.email && `email:${c.email}`, c.phone && `phoneNumber:${c.phone}`].filter((k): k is string => !!k);
}

/**
 * Applies a request's final status once, whether it came by webhook or by request/find: the request row is
 * locked and a request already resolved is left alone.
 */
export async function applyStatus(opts: ApplyOptions, status: RequestStatus, via: 'poll' | 'webhook'): Promise<ApplyOutcome> {
  const { handle, log, metrics } = opts;
  const s = handle.schema;
  const t = { outbox: sql.id(s, 'outbox'), state: sql.id(s, 'contact_state'), requests: sql.id(s, 'requests'), dead: sql.id(s, 'dead_letters') };
  return handle.db.transaction().execute(async (trx) => {
    const req = await sql<{ status: string }>`SELECT status FROM ${t.requests} WHERE request_id = ${status.id} FOR UPDATE`.execute(trx);
    const current = req.rows[0]?.status;
    if (current === undefined) return 'unknown';
    if (current !== 'new') return 'duplicate';
    if (status.status === 'new') {
      await sql`UPDATE ${t.requests} SET checked_at = now() WHERE request_id = ${status.id}`.execute(trx);
      return 'still-new';
    }
    const { rows: entries } = await sql<Inflight>`
      SELECT mapping, source_key, payload, sent_op, lsn::text AS lsn, attempts, maybe_ids FROM ${t.outbox}
      WHERE state = 'inflight' AND request_id = ${status.id}`.execute(trx);

    // Results name contacts by identifiers; match each to the entry that sent them (userId first).
    const byId = new Map<string, Inflight>();
    for (const e of entries) {
      const ids = { ...(e.maybe_ids ?? {}), ...identifiersOf(e.payload) };
      for (const [f, v] of Object.entries(ids)) if (v && !byId.has(`${f}:${v}`)) byId.set(`${f}:${v}`, e);
    }
    const verdicts = new Map<Inflight, Verdict>();
    const match = (c: ResultContact) => resultKeys(c).map((k) => byId.get(k)).find((e) => e && !verdicts.has(e));
    for (const c of status.results.success) {
      const e = match(c);
      if (e) verdicts.set(e, { kind: 'success' });
    }
    for (const err of status.results.errors) {
      const e = match(err.contact);
      if (e) verdicts.set(e, verdictFor(e.sent_op, e.attempts + 1, err));
    }
    for (const e of entries) {
      if (verdicts.has(e)) continue;
      const human = status.status === 'fail' ? 'the request failed without a result for this contact' : 'the request ended without a result for this contact';
      verdicts.set(e, verdictFor(e.sent_op, e.attempts + 1, { error: 'UNRESOLVED', humanError: human }));
    }

    const rows = [...verdicts].map(([e, v]) => {
      const dead = v.kind === 'dead' || (v.kind === 'retry' && e.attempts + 1 >= opts.maxAttempts);
      metrics.contactResults.inc({ result: v.kind === 'success' ? 'success' : v.code });
      return {
        m: e.mapping,
        k: e.source_key,
        p: e.payload,
        l: e.lsn,
        op: e.sent_op,
        ids: { ...(e.maybe_ids ?? {}), ...identifiersOf(e.payload) },
        kind: v.kind === 'success' ? 'success' : dead ? 'dead' : 'retry',
        hint: v.kind === 'retry' ? v.hint : null,
        delay: v.kind === 'retry' ? v.delayMs : 0,
        a: e.attempts + 1,
        code: v.kind === 'success' ? null : v.code,
        human: v.kind === 'success' ? null : v.human,
      };
    });
    const x = JSON.stringify(rows);
    await sql`
      WITH x AS (
        SELECT * FROM jsonb_to_recordset(${x}::jsonb)
          AS x(m text, k text, p jsonb, l pg_lsn, op text, ids jsonb, kind text, hint text, delay int, a int, code text, human text)
      ), synced AS (
        UPDATE ${t.state} s SET synced = CASE WHEN x.op = 'remove' THEN NULL ELSE NULLIF(x.p, 'null') END, updated_at = now()
        FROM x WHERE x.kind = 'success' AND s.mapping = x.m AND s.source_key = x.k
      ), retried AS (
        INSERT INTO ${t.outbox} (mapping, source_key, state, payload, lsn, attempts, op_hint, maybe_ids, next_attempt_at, last_error)
        SELECT m, k, 'pending', CASE WHEN op = 'remove' THEN NULL ELSE NULLIF(p, 'null') END, l, a, hint,
               CASE WHEN op = 'remove' THEN NULL ELSE ids END, now() + make_interval(secs => delay / 1000.0), code || ': ' || human
        FROM x WHERE kind = 'retry'
        -- A newer change is pending already: keep its payload, carry over what this answer taught us.
        ON CONFLICT (mapping, source_key, state) DO UPDATE SET
          op_hint = EXCLUDED.op_hint, attempts = GREATEST(${t.outbox}.attempts, EXCLUDED.attempts),
          maybe_ids = COALESCE(${t.outbox}.maybe_ids, '{}'::jsonb) || COALESCE(EXCLUDED.maybe_ids, '{}'::jsonb),
          next_attempt_at = EXCLUDED.next_attempt_at, last_error = EXCLUDED.last_error, updated_at = now()
      ), dead AS (
        INSERT INTO ${t.dead} (mapping, source_key, op, payload, error_code, human_error, attempts)
        SELECT m, k, op, NULLIF(p, 'null'), code, human, a FROM x WHERE kind = 'dead'
        ON CONFLICT (mapping, source_key) DO UPDATE SET op = EXCLUDED.op, payload = EXCLUDED.payload, error_code = EXCLUDED.error_code,
          human_error = EXCLUDED.human_error, attempts = EXCLUDED.attempts, last_seen = now()
      ), resolved AS (
        UPDATE ${t.requests} SET status = ${status.status}, resolved_at = now(), resolved_via = ${via}, checked_at = now()
        WHERE request_id = ${status.id}
      )
      DELETE FROM ${t.outbox} o USING x WHERE o.state = 'inflight' AND o.request_id = ${status.id} AND o.mapping = x.m AND o.source_key = x.k`.execute(trx);
    // Contacts deleted at the source and now gone from Wooxy need no state any more. Its own statement: it must
    // see the in-flight entries deleted above. Only a removal can leave such a state behind.
    if (rows.some((r) => r.kind === 'success' && r.op === 'remove')) {
      await sql`DELETE FROM ${t.state} s USING jsonb_to_recordset(${x}::jsonb) AS x(m text, k text, kind text, op text)
        WHERE x.kind = 'success' AND x.op = 'remove' AND s.mapping = x.m AND s.source_key = x.k AND s.row IS NULL AND s.desired IS NULL AND s.synced IS NULL
          AND NOT EXISTS (SELECT 1 FROM ${t.outbox} o WHERE o.mapping = s.mapping AND o.source_key = s.source_key)`.execute(trx);
    }
    metrics.requestStatuses.inc({ status: status.status, via });
    for (const r of rows) {
      if (r.kind === 'dead') {
        metrics.deadLetters.inc({ mapping: r.m, code: r.code ?? 'UNKNOWN' });
        log.warn({ mapping: r.m, key: r.k, requestId: status.id, code: r.code, humanError: r.human }, 'contact dead-lettered');
      }
    }
    log.debug({ requestId: status.id, status: status.status, via, contacts: rows.length }, 'request resolved');
    return 'applied';
  });
}
