import type { Command } from 'commander';
import type { Status } from '../admin/status.js';
import { formatAge, formatBytes } from './format.js';

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
  if (s.snapshot === null) row('Snapshot', 'none');
  else if (s.snapshot.length === 0) row('Snapshot', 'no progress recorded');
  else for (const [i, r] of s.snapshot.entries()) row(i === 0 ? 'Snapshot' : '', Object.entries(r).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' '));
  row('Last error', s.lastError ? `${s.lastError.at} ${s.lastError.mapping}/${s.lastError.key} (${s.lastError.source}): ${s.lastError.message}` : 'none');
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('status')
    .description('slot position and lag, leader, outbox depth, unresolved requests, dead letters, snapshot progress, last error')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--json', 'print one JSON document (for scripts)')
    .action(async (opts: { config: string; json?: boolean }) => {
      const [{ loadConfig }, { readStatus }] = await Promise.all([import('../config/loader.js'), import('../admin/status.js')]);
      const config = await loadConfig(opts.config, process.env, { withoutWooxy: true });
      const status = await readStatus(config);
      process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : `${render(status)}\n`);
    });
}
