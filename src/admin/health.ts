import type { Config } from '../config/schema.js';
import { formatBytes } from '../source/monitor.js';
import { createSql } from '../source/slot.js';
import type { Status } from './status.js';

/**
 * The judgement of a status report: healthy, degraded or down, with one problem per thing an operator must do
 * something about, each with its remedy (the Runbook's). `status --check` prints one line per problem and
 * exits 0, 1 or 2; `status --json` and /status carry the same list.
 *
 * down      nothing reaches Wooxy, or nothing can be known: Postgres unreachable, the schema not migrated, the
 *           slot or the publication missing, the slot invalidated, no instance leading, the slot not read.
 * degraded  it runs, but something is not in sync or waits for an operator: a mapping stopped or paused,
 *           removals held, orphaned entries, dead letters, too much WAL retained, a request unresolved past
 *           reconcile.warnAfterHours, a source gap of the last GAP_RECENT_HOURS.
 */
export type Health = 'healthy' | 'degraded' | 'down';

export const ProblemCodes = {
  POSTGRES_UNREACHABLE: 'POSTGRES_UNREACHABLE',
  STATUS_UNREADABLE: 'STATUS_UNREADABLE',
  SCHEMA_NOT_MIGRATED: 'SCHEMA_NOT_MIGRATED',
  SLOT_MISSING: 'SLOT_MISSING',
  SLOT_INVALIDATED: 'SLOT_INVALIDATED',
  PUBLICATION_MISSING: 'PUBLICATION_MISSING',
  NO_LEADER: 'NO_LEADER',
  SLOT_INACTIVE: 'SLOT_INACTIVE',
  MAPPING_STOPPED: 'MAPPING_STOPPED',
  DELIVERY_PAUSED: 'DELIVERY_PAUSED',
  REMOVALS_HELD: 'REMOVALS_HELD',
  ORPHANED_ENTRIES: 'ORPHANED_ENTRIES',
  CONFIGURATION_DIFFERS: 'CONFIGURATION_DIFFERS',
  DEAD_LETTERS: 'DEAD_LETTERS',
  WAL_RETAINED: 'WAL_RETAINED',
  REQUESTS_UNRESOLVED: 'REQUESTS_UNRESOLVED',
  SOURCE_GAP: 'SOURCE_GAP',
} as const;

export type ProblemCode = (typeof ProblemCodes)[keyof typeof ProblemCodes];

export interface Problem {
  severity: 'down' | 'degraded';
  code: ProblemCode;
  /** The mapping it is about, when it is about one. */
  mapping: string | null;
  /** What is wrong, with absolute times (never "3 min ago": two reads of one state say the same). */
  message: string;
  /** What to do: the Runbook's remedy, with the command to run. */
  remedy: string;
}

/** How long a source gap keeps the status degraded: long enough for a daily check to see it. */
export const GAP_RECENT_HOURS = 24;

const utc = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')} UTC`;

/** What to check for each cause of a pause (Runbook: Delivery paused). */
function pauseRemedy(cause: string, retryMs: number): string {
  const code = cause.split(':')[0];
  const check =
    code === 'WOOXY_UNAUTHORIZED'
      ? 'check WOOXY_ACCESS_TOKEN (Wooxy refuses it)'
      : code === 'WOOXY_LIST_NOT_FOUND'
        ? "check the mapping's contactListId (Wooxy does not know the list)"
        : code === 'WOOXY_LIST_REJECTED'
          ? "create the variable on the list, or drop it from the mapping's variables"
          : "check Wooxy's status and the network";
  return `${check}; the contacts stay pending and delivery tries again every ${Math.round(retryMs / 1000)} s [Runbook: Delivery paused]`;
}

export function assess(s: Omit<Status, 'health' | 'problems'>, config: Config, configFile: string): { health: Health; problems: Problem[] } {
  const problems: Problem[] = [];
  const down = (code: ProblemCode, message: string, remedy: string, mapping: string | null = null) => problems.push({ severity: 'down', code, mapping, message, remedy });
  const degraded = (code: ProblemCode, message: string, remedy: string, mapping: string | null = null) => problems.push({ severity: 'degraded', code, mapping, message, remedy });
  const cfg = `--config ${configFile}`;
  const { slot, publication } = s;
  const sqlSlot = createSql(slot.name);

  if (!s.postgres.reachable) {
    down('POSTGRES_UNREACHABLE', `Postgres does not answer: ${s.postgres.error ?? 'no answer'}`, 'check the connection string it names, the network, and that the server runs and accepts the role');
    return judged(problems);
  }
  if (s.postgres.error !== null) {
    down('STATUS_UNREADABLE', `the status could not be read: ${s.postgres.error}`, `check the role's privileges on schema ${s.schema.name} and the server's load`);
    return judged(problems);
  }
  if (!s.schema.migrated) {
    const none = s.schema.pending.length > 0 && s.schema.pending[0] === '0001_initial';
    down(
      'SCHEMA_NOT_MIGRATED',
      none ? `schema ${s.schema.name} is not migrated: the connector never ran here` : `schema ${s.schema.name} lacks migration(s) ${s.schema.pending.join(', ')}: an older wooxy-cdc migrated it`,
      `run: wooxy-cdc migrate ${cfg} (wooxy-cdc run migrates at start)`,
    );
  }
  if (!slot.exists) {
    down('SLOT_MISSING', `replication slot ${slot.name} does not exist`, `start the connector (with postgres.autoCreate it creates the slot, and reconciles every mapping if it had streamed before), or run: ${sqlSlot} [Runbook: Slot or publication lost]`);
  } else if (slot.walStatus === 'lost') {
    down(
      'SLOT_INVALIDATED',
      `replication slot ${slot.name} was invalidated (wal_status lost: it retained more WAL than max_slot_wal_keep_size)`,
      `with postgres.autoCreate the connector creates it again and reconciles every mapping; otherwise run: SELECT pg_drop_replication_slot('${slot.name}'); ${sqlSlot} [Runbook: Slot or publication lost]`,
    );
  }
  if (!publication.exists) {
    down('PUBLICATION_MISSING', `publication ${publication.name} does not exist`, 'start the connector (with postgres.autoCreate it creates the publication and reconciles every mapping), or create it as Operating shows [Runbook: Slot or publication lost]');
  }
  if (s.leader === null) {
    down('NO_LEADER', `no instance leads: no session holds the leader lock of slot ${slot.name}`, `start one: wooxy-cdc run ${cfg}, or find why the instances cannot reach Postgres [Runbook: Failover]`);
  } else if (slot.exists && !slot.active && slot.walStatus !== 'lost') {
    down(
      'SLOT_INACTIVE',
      `${s.leader.applicationName || `backend pid ${s.leader.pid}`} leads, but replication slot ${slot.name} is not being read`,
      `the leader's log names the stream's error (it retries with backoff) [Runbook: Slot lag grows]`,
    );
  }
  if (!s.schema.migrated) return judged(problems);

  for (const m of s.mappings) {
    if (m.stop) {
      degraded(
        'MAPPING_STOPPED',
        `mapping ${m.name} stopped since ${utc(m.stop.since)}${m.stop.lsn ? ` at ${m.stop.lsn}` : ''} (${m.stop.code}: ${m.stop.reason}); its changes are skipped`,
        'fix the table or the mapping, then restart: the mapping is reconciled by itself [Runbook: Mapping stopped]',
        m.name,
      );
    } else if (m.pause) {
      degraded('DELIVERY_PAUSED', `delivery of mapping ${m.name} paused since ${utc(m.pause.since)} (${m.pause.cause})`, pauseRemedy(m.pause.cause, config.delivery.pauseRetryMs), m.name);
    }
  }
  for (const r of s.removals.filter((x) => x.held)) {
    degraded(
      'REMOVALS_HELD',
      `${r.heldContacts} removal(s) of mapping ${r.mapping} held since ${utc(r.heldSince!)}${r.cause ? ` (${r.cause})` : ''}`,
      `run: ${r.command}, then approve or discard them [Runbook: Removals held]`,
      r.mapping,
    );
  }
  for (const o of s.orphans) {
    if (o.runByLeader) {
      degraded('CONFIGURATION_DIFFERS', `the leading instance runs mapping ${o.mapping}, which ${configFile} does not configure`, `status judges by ${configFile}: pass the file the instances run, or restart them with this one`, o.mapping);
    } else if (o.pending + o.inflight + o.deadLetters > 0) {
      degraded(
        'ORPHANED_ENTRIES',
        `mapping ${o.mapping} is not configured: ${o.pending} pending and ${o.inflight} in-flight entries will never be sent, ${o.deadLetters} dead letter(s) never settle`,
        `configure it again, or forget it (its contacts stay in Wooxy as they are): ${o.command}`,
        o.mapping,
      );
    }
  }
  const orphaned = new Set(s.orphans.map((o) => o.mapping));
  for (const [mapping, n] of Object.entries(s.deadLetters.byMapping)) {
    if (orphaned.has(mapping)) continue;
    degraded('DEAD_LETTERS', `${n} contact(s) of mapping ${mapping} are dead letters: not in sync, and not going to be without a change`, `run: wooxy-cdc dead-letters list --mapping ${mapping} ${cfg} [Runbook: Dead letters]`, mapping);
  }
  const warnAt = config.postgres.walWarnBytes;
  if (warnAt > 0 && slot.retainedWalBytes !== null && slot.retainedWalBytes > warnAt) {
    degraded(
      'WAL_RETAINED',
      `replication slot ${slot.name} retains ${formatBytes(slot.retainedWalBytes)} of WAL, more than postgres.walWarnBytes (${formatBytes(warnAt)}; wal_status ${slot.walStatus ?? '-'})`,
      'the server cannot recycle it until the slot advances [Runbook: Retained WAL warning]',
    );
  }
  if (s.requests.pastWarning > 0) {
    degraded(
      'REQUESTS_UNRESOLVED',
      `${s.requests.pastWarning} request(s) unresolved for more than ${s.requests.warnAfterHours} h; Wooxy forgets a status after 7 days`,
      'check that request/find reaches Wooxy; past retention their contacts are sent again [Runbook: Requests close to the 7-day window]',
    );
  }
  for (const g of s.sourceGaps) {
    degraded(
      'SOURCE_GAP',
      `${g.code} at ${utc(g.at)}: ${g.message}; the changes made meanwhile were never streamed, and every mapping was reconciled`,
      `find out who dropped the slot or the publication (for an invalidated slot, raise max_slot_wal_keep_size); said for ${GAP_RECENT_HOURS} h [Runbook: Slot or publication lost]`,
    );
  }
  return judged(problems);
}

function judged(problems: Problem[]): { health: Health; problems: Problem[] } {
  const health: Health = problems.some((p) => p.severity === 'down') ? 'down' : problems.length > 0 ? 'degraded' : 'healthy';
  return { health, problems };
}
