/**
 * `npx tsx bench/profile-summary.ts FILE.cpuprofile [N]`: where a V8 CPU profile (node --cpu-prof) spent its
 * time — self time by function and by package/file, and the share spent idle — the "where time goes" of the
 * bench's profiling runs.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary FILE.cpuprofile [N]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const byFn = new Map<string, number>();
const byPlace = new Map<string, number>();
for (const n of profile.nodes) {
  const t = self.get(n.id) ?? 0;
  if (!t) continue;
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(process.cwd(), '.');
  const place = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? (url.startsWith('node:') ? url : url ? url.replace(/:\d+$/, '') : `(${n.callFrame.functionName || 'native'})`);
  const fn = `${n.callFrame.functionName || '(anonymous)'}  ${url ? `${url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}` : ''}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + t);
  byPlace.set(place, (byPlace.get(place) ?? 0) + t);
}
const top = Number(topArg ?? 25);
const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
process.stdout.write(`total ${(total / 1e6).toFixed(2)} s sampled\n\nby package or file:\n`);
for (const [k, t] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(t)}  ${k}\n`);
process.stdout.write('\nby function (self time):\n');
for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(t)}  ${k}\n`);
