/**
 * `npm run bench [-- --quick] [-- --only ingest,delivery]`: every speed and memory figure of issue 8, each
 * against a throwaway Postgres and the emulator, written to bench/results/latest.{json,md,svg}.
 * Not part of `npm test`: nothing here asserts a target; the table says pass or miss.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster } from '../src/db/local-cluster.js';
import type { Figure, Scenario, ScenarioContext } from './lib/figure.js';
import { machineInfo } from './lib/machine.js';
import { serverVersion, startCluster } from './lib/pg.js';
import { renderMarkdown, renderSvg } from './render.js';
import { coalescing } from './scenarios/coalescing.js';
import { delivery } from './scenarios/delivery.js';
import { history } from './scenarios/history.js';
import { ingest } from './scenarios/ingest.js';
import { latency } from './scenarios/latency.js';
import { memory } from './scenarios/memory.js';
import { recovery } from './scenarios/recovery.js';
import { wal } from './scenarios/wal.js';

const SCENARIOS: Record<string, Scenario> = { ingest, delivery, latency, coalescing, memory, recovery, history, wal };

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only'));
const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1]! : args[args.indexOf(onlyArg) + 1]!).split(',') : Object.keys(SCENARIOS);
const outDir = path.resolve(import.meta.dirname, 'results');
const started = Date.now();
const log = (m: string) => process.stdout.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);

for (const name of only) if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);

// The memory and recovery figures run the compiled CLI, as production does: build it from this checkout.
log('building dist/ (tsc -p tsconfig.build.json)');
execFileSync(process.execPath, [path.resolve(import.meta.dirname, '../node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: path.resolve(import.meta.dirname, '..'), stdio: 'inherit' });

const probe: LocalCluster = await startCluster();
const machine = machineInfo(await serverVersion(probe));
await probe.stop('immediate');
log(`${machine.cpus} × ${machine.model}, ${machine.memoryGb} GB, Node ${machine.node}, PostgreSQL ${machine.postgres}, load ${machine.loadAverage.start}`);

const ctx: ScenarioContext = { quick, log };
const figures: Figure[] = [];
const failures: Array<{ scenario: string; error: string }> = [];
for (const name of only) {
  log(`${name}: start`);
  const t0 = Date.now();
  try {
    const out = await SCENARIOS[name]!(ctx);
    figures.push(...out);
    for (const f of out) log(`${f.title}: ${f.measured} vs ${f.against} → ${f.ratio ?? '–'} (target ${f.target}: ${f.pass === null ? 'n/a' : f.pass ? 'pass' : 'MISS'})`);
  } catch (e) {
    failures.push({ scenario: name, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    log(`${name}: FAILED ${e instanceof Error ? e.message : String(e)}`);
  }
  log(`${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
machine.loadAverage.end = Math.round(os.loadavg()[0]! * 100) / 100;

const result = { mode: quick ? 'quick' : 'full', durationSeconds: Math.round((Date.now() - started) / 1000), machine, figures, failures };
mkdirSync(outDir, { recursive: true });
const base = only.length === Object.keys(SCENARIOS).length ? 'latest' : `partial-${only.join('-')}`;
writeFileSync(path.join(outDir, `${base}.json`), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(path.join(outDir, `${base}.md`), renderMarkdown(result));
writeFileSync(path.join(outDir, `${base}.svg`), renderSvg(result));
log(`wrote bench/results/${base}.{json,md,svg} in ${result.durationSeconds} s`);
if (base === 'latest') {
  // The README's performance section shows the latest complete run: its table and chart, between markers.
  const readmePath = path.resolve(import.meta.dirname, '../README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const block = `<!-- bench:start (written by npm run bench) -->\n${renderMarkdown(result)}\n![Each figure as a multiple of its target](bench/results/latest.svg)\n<!-- bench:end -->`;
  const next = readme.replace(/<!-- bench:start[^]*?<!-- bench:end -->/, block);
  if (next !== readme) {
    writeFileSync(readmePath, next);
    log('updated the README performance section');
  }
}
process.exitCode = failures.length > 0 ? 1 : 0;
