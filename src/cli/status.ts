import type { Command } from 'commander';
import type { RemovalStatus, SnapshotStatus, Status } from '../admin/status.js';
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

function render(s: Status): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(14)}${value}`);
  row('Slot', s.slot.exists ? `${s.slot.name}: ${s.slot.active ? `active (walsender pid ${s.slot.activePid})` : 'inactive'}` : `${s.slot.name}: does not exist`);
  if (s.slot.exists) {
    row('', `confirmed ${s.slot.confirmedFlushLsn ?? '-'}, durable ${s.slot.durableLsn ?? '-'}, lag ${s.slot.lagBytes === null ? '-' : formatBytes(s.slot.lagBytes)}`);
    row('', `retained WAL ${s.slot.retainedWalBytes === null ? '-' : formatBytes(s.slot.retainedWalBytes)} (restart ${s.slot.restartLsn ?? '-'}, wal_status ${s.slot.walStatus ?? '-'})`);
  }
  row('Leader', s.leader ? `${s.leader.applicationName || '(no application_name)'} — backend pid ${s.leader.pid}${s.leader.clientAddr ? ` from ${s.leader.clientAddr}` : ''}${s.leader.backendStart ? `, since ${s.leader.backendStart}` : ''}` : 'none (no instance holds the lock)');
  if (!s.schema.migrated) {
    row('Schema', `${s.schema.name}: not migrated (run: wooxy-cdc migrate --config FILE)`);
    return lines.join('\n');
  }
  const o = s.outbox;
  row('Outbox', `${o.pending} pending (${o.due} due), ${o.inflight} in flight${o.oldestPendingAgeSeconds === null ? '' : `; oldest pending ${formatAge(o.oldestPendingAgeSeconds)}`}`);
  row('Requests', `${s.requests.unresolved} unresolved${s.requests.oldestUnresolvedAgeSeconds === null ? '' : `; oldest ${formatAge(s.requests.oldestUnresolvedAgeSeconds)} (statuses vanish after 7 d)`}`);
  const codes = Object.entries(s.deadLetters.byCode).map(([c, n]) => `${c} ${n}`);
  row('Dead letters', s.deadLetters.count === 0 ? '0' : `${s.deadLetters.count} (${codes.join(', ')}); see: wooxy-cdc dead-letters list`);
  if (s.removals !== null) {
    const lines = s.removals.map(renderRemovals);
    if (!s.removals.some((r) => r.held)) lines.unshift('none held');
    for (const [i, line] of lines.entries()) row(i === 0 ? 'Removals' : '', line);
  }
  if (s.snapshot === null) row('Snapshot', 'none');
  else if (s.snapshot.length === 0) row('Snapshot', 'no progress recorded');
  else for (const [i, r] of s.snapshot.entries()) row(i === 0 ? 'Snapshot' : '', renderSnapshot(r));
  row('Last error', s.lastError ? `${s.lastError.at} ${s.lastError.mapping}/${s.lastError.key} (${s.lastError.source}): ${s.lastError.message}` : 'none');
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('status')
    .description('slot position and lag, leader, outbox depth, unresolved requests, dead letters, held removals, snapshot progress, last error')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--json', 'print one JSON document (for scripts)')
    .action(async (opts: { config: string; json?: boolean }) => {
      const [{ loadConfig }, { readStatus }] = await Promise.all([import('../config/loader.js'), import('../admin/status.js')]);
      const config = await loadConfig(opts.config, process.env, { withoutWooxy: true });
      const status = await readStatus(config, opts.config);
      process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : `${render(status)}\n`);
    });
}
