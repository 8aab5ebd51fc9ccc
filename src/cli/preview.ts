import type { Config } from '../config/schema.js';
import { CdcError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { CHANGES } from '../snapshot/classify.js';
import { runPreview, type PreviewOptions, type PreviewOutcome } from '../snapshot/preview.js';
import { BarProgress } from '../snapshot/report.js';
import { openPreviewSession, selectMappings, stopOnSignal } from '../snapshot/session.js';

/**
 * The dry runs (`snapshot --dry-run`, `resync --dry-run`) and `plan` share this: one preview per mapping
 * (src/snapshot/preview.ts), printed as counts with a few examples of each, or as JSON.
 */

const n = (v: number) => v.toLocaleString('en-US');
const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** What each preview compares with, for its heading. */
const AGAINST: Record<PreviewOutcome['mode'], string> = {
  snapshot: 'what this snapshot would queue, and what delivery would then send',
  resync: 'what this resync would queue, and what delivery would then send',
  plan: 'the table under this configuration against what Wooxy holds, as far as the connector knows',
};

/** The removals are a mass removal: the guard would hold them, and this is how they would go. */
function heldNote(o: PreviewOutcome): string {
  const g = o.guard!;
  return `  — held by the mass-removal guard (more than ${n(g.minRemovals)} and more than ${g.removePercent}% of ${n(g.synced)} synced) until \`wooxy-cdc removals approve --mapping ${o.mapping}\``;
}

export function renderPreview(o: PreviewOutcome): string {
  const title = o.mode === 'plan' ? `plan ${o.mapping}` : `${o.mode} ${o.mapping} --dry-run`;
  const lines = [`${title}: ${o.table} → list ${o.listId}; ${AGAINST[o.mode]}`];
  const read = [`${n(o.rows)} row(s) read${o.where ? ` (--where ${JSON.stringify(o.where)})` : ''}`];
  if (o.statesChecked > 0) read.push(`${n(o.statesChecked)} contact state(s) checked for rows gone`);
  if (!o.finished) read.push('STOPPED before the end: the counts are of what was read');
  lines.push(read.join(', '));
  if (!o.migrated) lines.push("the connector's schema does not exist here yet: no contact is known, every row is new");
  if (o.listChangedFrom) lines.push(`the mapping synced to list ${o.listChangedFrom}; list ${o.listId} holds none of its contacts yet: every contact is an add`);
  const width = Math.max(...CHANGES.map((c) => n(o.counts[c]).length));
  for (const c of CHANGES) {
    const held = c === 'remove' && o.guard?.wouldHold ? heldNote(o) : '';
    lines.push(`  ${c.padEnd(12)}${n(o.counts[c]).padStart(width)}${held}`);
    const keyWidth = Math.max(0, ...o.examples[c].map((e) => e.key.length));
    for (const e of o.examples[c]) lines.push(e.detail ? `      ${e.key.padEnd(keyWidth)}  ${cut(e.detail, 110)}` : `      ${e.key}`);
  }
  if (o.mode === 'plan') lines.push('Nothing was written.');
  else lines.push(`Nothing was queued; without --dry-run this ${o.mode} would queue ${n(o.queued)} contact(s).`);
  return lines.join('\n');
}

export interface PreviewCommand {
  config: Config;
  log: Logger;
  mode: PreviewOptions['mode'];
  mapping: string | undefined;
  chunkSize: number;
  where?: string;
  sweep?: boolean;
  examples?: string;
  json?: boolean;
}

/** Runs the previews of the named mapping (all, when none is named) and prints them. */
export async function previewCommand(c: PreviewCommand): Promise<PreviewOutcome[]> {
  const examples = c.examples === undefined ? 3 : Number(c.examples);
  if (!Number.isInteger(examples) || examples < 0 || examples > 1000) throw new CdcError('USAGE_INVALID', `--examples must be an integer from 0 to 1000, got "${c.examples}"`);
  const session = openPreviewSession(c.config, c.mode === 'plan' ? 'plan' : `${c.mode} dry-run`);
  const stop = stopOnSignal(c.log);
  try {
    const outcomes: PreviewOutcome[] = [];
    for (const mapper of selectMappings(session.mappers, c.mapping)) {
      // A bar on a terminal only: log lines would land in the report (the log writes to stdout).
      const progress = process.stderr.isTTY ? new BarProgress(process.stderr) : undefined;
      const guard = c.config.mappings.find((m) => m.name === mapper.name)?.guard;
      const o = await runPreview({ handle: session.handle, mapper, mode: c.mode, chunkSize: c.chunkSize, where: c.where, sweep: c.sweep, examples, guard, signal: stop.signal, progress });
      outcomes.push(o);
      if (!c.json) process.stdout.write(`${renderPreview(o)}\n`);
      if (!o.finished) break;
    }
    if (c.json) process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
    if (outcomes.some((o) => !o.finished)) throw new CdcError('SNAPSHOT_INTERRUPTED', `${c.mode === 'plan' ? 'plan' : `${c.mode} --dry-run`} stopped before the end`);
    return outcomes;
  } finally {
    stop.dispose();
    await session.close();
  }
}
