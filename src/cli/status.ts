import type { Command } from 'commander';
import type { Problem } from '../admin/health.js';
import type { MappingStatus, OrphanStatus, RemovalStatus, SnapshotStatus, StageError, Status } from '../admin/status.js';
import { formatAge, formatBytes } from './format.js';

const count = (n: number) => n.toLocaleString('en-US');

/**
 * users: finished 2026-11-30 08:50:01 UTC, 2,000 rows in 4 chunks (took 3 s)
 * users: 45% — 45,000 of ~100,000 rows, 9 chunks, after key 45000; last chunk 12 s ago
 */
export function renderSnapshot(r: SnapshotStatus): string {
  const chunks = `${count(r.chunksDone)} chunk${r.chunksDone === 1 ? '' : 's'}`;
  if (r.finished) {
    const took = (Date.parse(r.finishedAt ?? r.updatedAt) - Date.parse(r.startedAt)) / 1000;
    return `${r.mapping}: finished ${utc(r.finishedAt ?? r.updatedAt)}, ${count(r.rowsDone)} rows in ${chunks} (took ${formatAge(took)})`;
  }
  const of = r.rowsExpected === null ? '' : ` of ~${count(r.rowsExpected)}`;
  const percent = r.rowsExpected ? `${Math.min(99, Math.floor((100 * r.rowsDone) / r.rowsExpected))}% — ` : '';
  const where = r.lastKey === null ? 'not started' : `after key ${r.lastKey}`;
  return `${r.mapping}: ${percent}${count(r.rowsDone)}${of} rows, ${chunks}, ${where}; last chunk ${formatAge(r.secondsSinceUpdate)} ago`;
}

const utc = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')} UTC`;

/**
 * users: 200 held since 2026-11-30 08:50:01 UTC (TRUNCATE of public.users); run: wooxy-cdc removals list --mapping users --config my.yaml
 * users: none held; last: approved 200 on 2026-11-30 09:02:11 UTC by ops@host
 */
export function renderRemovals(r: RemovalStatus): string {
  const d = r.lastDecision;
  const last = d ? `last: ${d.decision === 'approve' ? 'approved' : 'discarded'} ${count(d.contacts)} on ${utc(d.decidedAt)} by ${d.decidedBy}` : '';
  if (!r.held) return `${r.mapping}: none held${last ? `; ${last}` : ''}`;
  return `${r.mapping}: ${count(r.heldContacts)} held since ${utc(r.heldSince!)}${r.cause ? ` (${r.cause})` : ''}; run: ${r.command}`;
}

/** One line per problem, as `status --check` prints it: severity, code, what is wrong, what to do. */
export function problemLine(p: Problem): string {
  return `${p.severity.toUpperCase()} ${p.code}: ${p.message} — ${p.remedy}`;
}

/** What `status --check` prints: one line per problem, or one line saying all is well. */
export function renderCheck(s: Status): string {
  if (s.problems.length === 0) return `HEALTHY: slot ${s.slot.name} streaming, ${s.mappings.length} mapping(s) running, nothing waits for an operator`;
  return s.problems.map(problemLine).join('\n');
}

/** users: stopped since 2026-11-30 08:50:01 UTC (MAPPING_SCHEMA_CHANGED: column … no longer exists) */
export function renderMapping(m: MappingStatus): string {
  const where = `${m.name} (${m.table} → list ${m.listId})`;
  if (m.stop) return `${where}: stopped since ${utc(m.stop.since)} (${m.stop.code}: ${m.stop.reason})`;
  if (m.pause) return `${where}: delivery paused since ${utc(m.pause.since)} (${m.pause.cause})`;
  return `${where}: ${m.state === 'new' ? 'not run yet' : 'running'}`;
}

export function renderOrphan(o: OrphanStatus): string {
  const what = `${o.pending} pending, ${o.inflight} in flight, ${o.contacts} contact state(s), ${o.deadLetters} dead letter(s)`;
  if (o.runByLeader) return `${o.mapping}: not in this configuration, but the leading instance runs it (${what})`;
  return `${o.mapping}: not configured (${what}); forget it: ${o.command}`;
}

/** 2026-11-30 08:50:01 UTC (3 min ago) users/7 WOOXY_VALIDATION: … */
export function renderStageError(e: StageError | null): string {
  if (!e) return 'none';
  const who = e.mapping ? ` ${e.mapping}${e.key ? `/${e.key}` : ''}` : '';
  return `${utc(e.at)} (${formatAge(e.ageSeconds)} ago)${who} ${e.code ? `${e.code}: ` : ''}${e.message}`;
}

function render(s: Status): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(16)}${value}`);
  row('Health', s.problems.length === 0 ? 'healthy' : `${s.health}: ${s.problems.length} problem(s)`);
  for (const p of s.problems) row('', problemLine(p));
  if (!s.postgres.reachable || s.postgres.error !== null) return lines.join('\n');
  row('Slot', s.slot.exists ? `${s.slot.name}: ${s.slot.active ? `active (walsender pid ${s.slot.activePid})` : 'inactive'}` : `${s.slot.name}: does not exist`);
  if (s.slot.exists) {
    row('', `confirmed ${s.slot.confirmedFlushLsn ?? '-'}, durable ${s.slot.durableLsn ?? '-'}`);
    row('', `retained WAL ${s.slot.retainedWalBytes === null ? '-' : formatBytes(s.slot.retainedWalBytes)} (restart ${s.slot.restartLsn ?? '-'}, wal_status ${s.slot.walStatus ?? '-'})`);
  }
  row('Publication', `${s.publication.name}: ${s.publication.exists ? 'exists' : 'does not exist'}`);
  row('Leader', s.leader ? `${s.leader.applicationName || '(no application_name)'} — backend pid ${s.leader.pid}${s.leader.clientAddr ? ` from ${s.leader.clientAddr}` : ''}${s.leader.backendStart ? `, since ${s.leader.backendStart}` : ''}${s.term ? `; epoch ${s.term.epoch}` : ''}` : 'none (no instance holds the lock)');
  if (!s.schema.migrated) {
    row('Schema', `${s.schema.name}: not migrated (pending ${s.schema.pending.join(', ')})`);
    return lines.join('\n');
  }
  row('Lag', `${s.lag.bytes === null ? '-' : formatBytes(s.lag.bytes)} of WAL not yet confirmed; oldest durable pending contact ${s.lag.seconds === null ? 'none' : `waits ${formatAge(s.lag.seconds)}`}`);
  for (const [i, m] of s.mappings.entries()) row(i === 0 ? 'Mappings' : '', renderMapping(m));
  const o = s.outbox;
  row('Outbox', `${o.pending} pending (${o.due} due), ${o.inflight} in flight${o.oldestPendingAgeSeconds === null ? '' : `; oldest pending ${formatAge(o.oldestPendingAgeSeconds)}`}`);
  row('Requests', `${s.requests.unresolved} unresolved${s.requests.oldestUnresolvedAgeSeconds === null ? '' : `; oldest ${formatAge(s.requests.oldestUnresolvedAgeSeconds)} (statuses vanish after 7 d)`}`);
  const codes = Object.entries(s.deadLetters.byCode).map(([c, n]) => `${c} ${n}`);
  row('Dead letters', s.deadLetters.count === 0 ? '0' : `${s.deadLetters.count} (${codes.join(', ')}); see: wooxy-cdc dead-letters list`);
  const removals = s.removals.map(renderRemovals);
  if (!s.removals.some((r) => r.held)) removals.unshift('none held');
  for (const [i, line] of removals.entries()) row(i === 0 ? 'Removals' : '', line);
  if (s.orphans.length === 0) row('Orphans', 'none');
  else for (const [i, x] of s.orphans.entries()) row(i === 0 ? 'Orphans' : '', renderOrphan(x));
  if (s.snapshot.length === 0) row('Snapshot', 'none');
  else for (const [i, r] of s.snapshot.entries()) row(i === 0 ? 'Snapshot' : '', renderSnapshot(r));
  row('Last errors', `source          ${renderStageError(s.lastErrors.source)}`);
  row('', `delivery        ${renderStageError(s.lastErrors.delivery)}`);
  row('', `reconciliation  ${renderStageError(s.lastErrors.reconciliation)}`);
  row('', `dead letters    ${renderStageError(s.lastErrors.deadLetters)}`);
  return lines.join('\n');
}

/** `status --check`'s exit codes, for cron and monitoring checks. */
export const CheckExit = { healthy: 0, degraded: 1, down: 2 } as const;

export function register(program: Command): void {
  program
    .command('status')
    .description('health and its problems; slot, lag, leader, mappings (stopped, paused), outbox, requests, dead letters, held removals, orphans, snapshots, the last error per stage')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--json', 'print one JSON document (for scripts)')
    .option('--check', 'print one line per problem and exit 0 when healthy, 1 when degraded, 2 when down (for cron and monitoring)')
    .action(async (opts: { config: string; json?: boolean; check?: boolean }) => {
      const [{ loadConfig }, { statusOf }] = await Promise.all([import('../config/loader.js'), import('../admin/status.js')]);
      const config = await loadConfig(opts.config, process.env, { withoutWooxy: true });
      const status = await statusOf(config, opts.config);
      process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : `${opts.check ? renderCheck(status) : render(status)}\n`);
      // Without --check the command succeeded when it could read the report; what the report says is its content.
      if (opts.check) process.exitCode = CheckExit[status.health];
      else if (!status.postgres.reachable || status.postgres.error !== null) process.exitCode = 1;
    });
}
