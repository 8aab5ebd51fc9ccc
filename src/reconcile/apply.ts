import { backoffDelay } from '../lib/backoff.js';
import { identifiersOf } from '../delivery/plan.js';
import type { Logger } from '../observability/logger.js';
import type { DeadLetterLog } from '../observability/activity.js';
import type { Metrics } from '../observability/metrics.js';
import type { StoreContext } from '../store/context.js';
import { applyResult, type ApplyOutcome, type InflightEntry, type ResultRow } from '../store/results.js';
import type { Fence } from '../store/tx.js';
import { settleTaken, TAKEN_CODES } from './identifiers.js';
import type { RequestStatus, ResultContact } from '../wooxy/types.js';

export type { ApplyOutcome } from '../store/results.js';

type Verdict =
  | { kind: 'success' }
  | { kind: 'retry'; hint: 'add' | 'update' | 'replace' | null; delayMs: number; code: string; human: string }
  | { kind: 'dead'; code: string; human: string };

export interface ApplyOptions {
  ctx: StoreContext;
  log: Logger;
  metrics: Metrics;
  /** A contact whose requests keep failing is dead-lettered after this many attempts. */
  maxAttempts: number;
  /**
   * The leader's term when its poller applies a status (fenced); null for the webhook receiver: any instance
   * may receive Wooxy's callback, and applying a final status is idempotent (the request row is locked and a
   * resolved request is left alone), so it needs no leadership.
   */
  fence: Fence | null;
  /** Where each dead letter is named (rate-limited); the logger when absent. */
  deadLetters?: DeadLetterLog;
}

/** min(60 s, 0.5 s·2^n), never less than half: the backoff of a contact whose request failed. */
export function retryDelayMs(attempts: number): number {
  return backoffDelay({ baseMs: 500, maxMs: 60_000, jitter: 'equal' }, attempts);
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
 * Per-contact rules for a finished request: success records what Wooxy now holds; an add told the contact
 * exists is sent again as an update, an update told it does not exist as an add; a remove of a missing
 * contact is done; ERR_SYSTEM_ERROR and failed requests retry with backoff; identifiers held by another
 * contact wait (the holder may be releasing them) and then break the cycle by remove-and-add; any other
 * error is a dead letter with Wooxy's humanError. Where the identifier Wooxy refused is held by another
 * contact of the mapping, settleTaken (identifiers.ts) has the last word: a row that still wants it makes
 * this one a dead letter at once (IDENTIFIER_TAKEN) instead of a ping-pong of fallbacks.
 */
export function verdictFor(op: InflightEntry['sent_op'], attempts: number, error: { error: string; humanError: string } | null): Verdict {
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
 * What a final status means for each in-flight entry of its request. Results name contacts by identifiers;
 * each is matched to the entry that sent them (userId first). An entry the results do not mention is retried
 * as unresolved.
 */
export function resultRows(status: RequestStatus, entries: readonly InflightEntry[], maxAttempts: number): ResultRow[] {
  const byId = new Map<string, InflightEntry>();
  for (const e of entries) {
    const ids = { ...(e.maybe_ids ?? {}), ...identifiersOf(e.payload) };
    for (const [f, v] of Object.entries(ids)) if (v && !byId.has(`${f}:${v}`)) byId.set(`${f}:${v}`, e);
  }
  const verdicts = new Map<InflightEntry, Verdict>();
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
  return [...verdicts].map(([e, v]) => {
    const dead = v.kind === 'dead' || (v.kind === 'retry' && e.attempts + 1 >= maxAttempts);
    const taken = v.kind !== 'success' && e.sent_op !== 'remove' && TAKEN_CODES.has(v.code);
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
      // Which contact holds the identifier decides between a fallback, a wait and a dead letter (settleTaken).
      want: taken ? identifiersOf(e.payload) : null,
    };
  });
}

/**
 * Applies a request's final status once, whether it came by webhook or by request/find (see
 * store/results.ts). Metrics and logs follow the commit: a rolled-back attempt counts nothing.
 */
export async function applyStatus(opts: ApplyOptions, status: RequestStatus, via: 'poll' | 'webhook'): Promise<ApplyOutcome> {
  const { ctx, log, metrics } = opts;
  const report = await applyResult(ctx, opts.fence, status, via, (entries) => resultRows(status, entries, opts.maxAttempts), settleTaken);
  if (report.outcome !== 'applied') return report.outcome;
  metrics.requestStatuses.inc({ status: status.status, via });
  for (const r of report.rows) {
    metrics.contactResults.inc({ result: r.kind === 'success' ? 'success' : (r.code ?? 'UNKNOWN') });
    if (r.kind === 'dead') {
      metrics.deadLetters.inc({ mapping: r.m, code: r.code ?? 'UNKNOWN' });
      if (opts.deadLetters) opts.deadLetters.report({ mapping: r.m, key: r.k, code: r.code ?? 'UNKNOWN', message: r.human ?? '', requestId: status.id });
      else log.warn({ mapping: r.m, key: r.k, requestId: status.id, code: r.code, humanError: r.human }, 'contact dead-lettered');
    }
  }
  for (const r of report.released) {
    log.info({ mapping: r.mapping, key: r.key, requestId: status.id, heldBy: r.by, identifier: `${r.field} ${r.value}` }, 'contact queued again: the contact that held its identifier let go of it');
  }
  if (report.stray > 0) log.info({ requestId: status.id, contacts: report.stray }, 'a request that overlapped another resolved: its contacts are sent again from their current state');
  log.debug({ requestId: status.id, status: status.status, via, contacts: report.rows.length }, 'request resolved');
  return 'applied';
}
