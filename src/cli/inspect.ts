import type { Command } from 'commander';
import type { Inspection, InspectReport } from '../admin/inspect.js';
import { describeChange } from '../admin/diff.js';
import { CdcError } from '../errors.js';
import { IDENTIFIER_FIELDS } from '../mapping/contact-fields.js';
import { canonicalJson } from '../outbox/json.js';
import type { HistoryEntry } from '../store/history.js';
import { table } from './format.js';

/** One line of JSON, keys sorted; a Date (a timestamp column) as its ISO text, as --json prints it. */
const oneLine = (v: unknown) => canonicalJson(JSON.parse(JSON.stringify(v ?? null)));
const utc = (iso: string | null) => (iso === null ? '-' : `${iso.slice(0, 19).replace('T', ' ')}`);
/** Identifiers in Wooxy's order of precedence (userId, email, phoneNumber), whatever order jsonb kept. */
const ids = (v: Record<string, string> | null) =>
  IDENTIFIER_FIELDS.filter((f) => v?.[f])
    .map((f) => `${f} ${v![f]}`)
    .join(', ');

/** What a contact's part in a request came to, in words. */
export function answerText(h: HistoryEntry): string {
  const said = h.code ? `${h.code}${h.humanError ? `: ${h.humanError}` : ''}` : '';
  switch (h.outcome) {
    case 'success':
      return 'success';
    case 'retry':
      return `${said} → ${h.hint === 'replace' ? 'removed and added again' : h.hint ? `sent again as ${h.hint}` : 'sent again'}`;
    case 'dead':
      return `dead letter ${said}`;
    case 'expired':
      return 'expired: Wooxy no longer knew the request; sent again';
    case 'stray':
      return 'overlapped another request of this contact; sent again';
  }
}

export function renderInspection(i: Inspection, keepDays: number): string {
  const lines: string[] = [`${i.mapping}/${i.key}: ${i.summary}`, ''];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(14)}${value}`);
  const where = `${i.row.table} ${i.row.keyColumn} ${i.key}`;
  row('Row', i.row.error !== null ? `${where}: cannot be read: ${i.row.error}` : i.row.found ? `${where}: ${oneLine(i.row.columns)}` : `${where}: no such row`);
  if (i.filter) row('Filter', i.filter.passes ? 'passes' : `filtered out: ${i.filter.unmet.map((c) => oneLine(c)).join(', ')}`);
  if (i.projection) row('Contact', i.projection.ok ? oneLine(i.projection.contact) : `invalid (ROW_INVALID): ${i.projection.problems.join('; ')}`);
  row('Wooxy holds', i.wooxy.holds ? `${oneLine(i.wooxy.holds)} (as far as the connector knows)` : 'nothing, as far as the connector knows');
  if (i.wants !== 'invalid' && i.wants !== null) {
    row('Differences', i.wooxy.differences.length === 0 ? 'none' : i.wooxy.differences.map((d) => describeChange(d)).join('; '));
  }
  const p = i.pending;
  row(
    'Pending',
    p
      ? [
          p.payload === null ? 'a removal' : oneLine(p.payload),
          `queued ${utc(p.enqueuedAt)}`,
          p.attempts > 0 ? `${p.attempts} attempt(s)` : '',
          `due ${utc(p.nextAttemptAt)}`,
          p.opHint ? `next as ${p.opHint}` : '',
          p.claimedBy && p.claimedUntil && Date.parse(p.claimedUntil) > Date.now() ? `claimed by ${p.claimedBy}` : '',
          p.lastError ? `last error: ${p.lastError}` : '',
        ]
          .filter(Boolean)
          .join(', ')
      : 'none',
  );
  const f = i.inflight;
  row('In flight', f ? `${f.sentOp} request ${f.requestId}, sent ${utc(f.sentAt)}${f.request ? `, Wooxy status ${f.request.status} (checked ${utc(f.request.checkedAt)})` : ''}` : 'none');
  const d = i.deadLetter;
  row('Dead letter', d ? `${d.code} (${d.op}, ${d.attempts} attempt(s), since ${utc(d.firstSeen)}): ${d.message}` : 'none');
  if (i.history === null) {
    row('History', 'not kept (the connector schema predates it: wooxy-cdc migrate)');
  } else if (i.history.length === 0 && keepDays === 0) {
    row('History', 'none kept (history.keepDays is 0)');
  } else {
    row('History', `${i.history.length} request(s)${i.history.length > 0 ? ', newest first' : ''} (kept ${keepDays} days)`);
    if (i.history.length > 0) {
      const body = i.history.map((h) => [utc(h.sentAt), h.requestId ?? '(refused at the call)', h.op, ids(h.ids), answerText(h)]);
      lines.push('', ...table(['SENT (UTC)', 'REQUEST', 'OP', 'IDENTIFIERS', 'ANSWER'], body, 120).split('\n').map((l) => `  ${l}`));
    }
  }
  return lines.join('\n');
}

export function renderReport(r: InspectReport): string {
  if (r.contacts.length === 0) {
    const what = 'key' in r.by ? `key ${r.by.key}` : `${r.by.field} ${r.by.value}`;
    return `${r.mapping}: no contact with ${what}${r.migrated ? '' : ' (the connector has not run against this database: its schema is missing)'}`;
  }
  return r.contacts.map((c) => renderInspection(c, r.historyKeepDays)).join('\n\n');
}

interface Options {
  config: string;
  mapping: string;
  key?: string;
  email?: string;
  phone?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description("one contact: the row now and what it projects to, what Wooxy holds, what is queued or in flight, its dead letter and request history")
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .requiredOption('-m, --mapping <name>', 'the mapping the contact belongs to')
    .option('-k, --key <key>', 'the source key (the mapping\'s key column)')
    .option('--email <email>', 'find the contact by email (case-insensitive)')
    .option('--phone <phone>', 'find the contact by phone number, as sent (E.164)')
    .option('--json', 'print one JSON document (for scripts)')
    .action(async (o: Options) => {
      const given = [o.key, o.email, o.phone].filter((v) => v !== undefined);
      if (given.length !== 1) throw new CdcError('USAGE_INVALID', 'give exactly one of --key, --email, --phone');
      const [{ loadConfig }, { inspect, isKnown }] = await Promise.all([import('../config/loader.js'), import('../admin/inspect.js')]);
      const config = await loadConfig(o.config, process.env, { withoutWooxy: true });
      const by = o.key !== undefined ? { key: o.key } : o.email !== undefined ? { field: 'email' as const, value: o.email } : { field: 'phoneNumber' as const, value: o.phone! };
      const report = await inspect(config, o.mapping, by);
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
      // Scripts can tell "nothing known of it" from an answer.
      if (!report.contacts.some(isKnown)) process.exitCode = 1;
    });
}
