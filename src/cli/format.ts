/** Small helpers for the commands' terminal output: aligned tables and human durations and sizes. */
export { formatBytes } from '../source/monitor.js';

export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** Left-aligned columns separated by two spaces; cells longer than `max` are cut with an ellipsis. */
export function table(header: string[], rows: string[][], max = 60): string {
  const cut = (c: string) => (c.length > max ? `${c.slice(0, max - 1)}…` : c);
  const all = [header, ...rows].map((r) => r.map(cut));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
