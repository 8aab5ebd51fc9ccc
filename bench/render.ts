import type { Figure } from './lib/figure.js';
import type { MachineInfo } from './lib/machine.js';

export interface BenchResult {
  mode: string;
  durationSeconds: number;
  machine: MachineInfo;
  figures: Figure[];
  failures: Array<{ scenario: string; error: string }>;
}

const verdict = (f: Figure) => (f.pass === null ? '–' : f.pass ? '**pass**' : '**miss**');

export function machineLine(m: MachineInfo): string {
  return `${m.cpus} × ${m.model}, ${m.memoryGb} GB RAM, ${m.os}; Node ${m.node}; PostgreSQL ${m.postgres} (throwaway local cluster, fsync off); load average ${m.loadAverage.start}${m.loadAverage.end === undefined ? '' : ` → ${m.loadAverage.end}`} (a shared machine); ${m.date.slice(0, 16).replace('T', ' ')} UTC; commit ${m.commit}`;
}

export function renderMarkdown(r: BenchResult): string {
  const lines = [
    `Measured by \`npm run bench${r.mode === 'quick' ? ' -- --quick' : ''}\` in ${Math.round(r.durationSeconds / 60)} min on ${machineLine(r.machine)}.`,
    '',
    '| figure | measured | against | ratio | target | result |',
    '| --- | --- | --- | --- | --- | --- |',
    ...r.figures.map((f) => `| ${f.title} | ${f.measured} | ${f.against} | ${f.ratio ?? '–'} | ${f.target} | ${verdict(f)} |`),
  ];
  if (r.failures.length > 0) lines.push('', ...r.failures.map((f) => `- scenario **${f.scenario}** failed: ${f.error.split('\n')[0]}`));
  return `${lines.join('\n')}\n`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A bar per figure with a target, scaled so the target is the dashed line at 1×: a bar past it passes.
 * Bars are capped at 3× (the label says the real value).
 */
export function renderSvg(r: BenchResult): string {
  const rows = r.figures.filter((f) => f.score !== null);
  const width = 860;
  const left = 300;
  const barMax = width - left - 90;
  const cap = 3;
  const rowH = 34;
  const top = 56;
  const height = top + rows.length * rowH + 46;
  const x = (v: number) => left + (Math.min(v, cap) / cap) * barMax;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">wooxy-cdc benchmarks (${esc(r.mode)}): each figure as a multiple of its target</text>`,
    `<text x="16" y="42" fill="#555" font-size="11">${esc(`${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}, PostgreSQL ${r.machine.postgres}, ${r.machine.date.slice(0, 10)}`)}</text>`,
  ];
  rows.forEach((f, i) => {
    const y = top + i * rowH;
    const score = f.score!;
    const color = f.pass ? '#2e7d32' : '#c62828';
    parts.push(
      `<text x="${left - 10}" y="${y + 19}" text-anchor="end">${esc(f.title)}</text>`,
      `<rect x="${left}" y="${y + 6}" width="${Math.max(1, x(score) - left)}" height="20" fill="${color}" opacity="0.85"/>`,
      `<text x="${x(score) + 6}" y="${y + 20}" fill="#333">${esc(`${score >= 10 ? Math.round(score) : score.toFixed(2)}× (${f.ratio ?? ''}; ${f.target})`)}</text>`,
    );
  });
  const bottom = top + rows.length * rowH;
  for (const t of [0, 1, 2, 3]) {
    parts.push(
      `<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${bottom}" stroke="${t === 1 ? '#000' : '#ccc'}" ${t === 1 ? 'stroke-dasharray="5,4"' : ''}/>`,
      `<text x="${x(t)}" y="${bottom + 16}" text-anchor="middle" fill="#555">${t}×${t === 1 ? ' (target)' : t === cap ? '+' : ''}</text>`,
    );
  }
  parts.push(`<text x="16" y="${height - 10}" fill="#555" font-size="11">green: target met; red: missed. Throughput and speed-up: measured / target; latency and memory: target / measured.</text>`, '</svg>');
  return `${parts.join('\n')}\n`;
}
