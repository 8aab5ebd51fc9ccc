/**
 * `npm run soak [-- --runs N --seed S]`: the randomized convergence scenarios of test/e2e/convergence.test.ts
 * by the hundred (default 100), each with random faults, SIGKILLs and sometimes a Postgres restart, on a
 * throwaway cluster. Prints a line per scenario and a summary; exits 1 with the seed and index to replay when
 * any scenario fails to converge.
 */
import fc from 'fast-check';
import { LocalCluster } from '../src/db/local-cluster.js';
import { runScenario, scenarioArbitrary } from './helpers/scenario.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const runs = arg('runs', 100);
const seed = arg('seed', Date.now() % 1_000_000);

const scenarios = fc.sample(scenarioArbitrary({ minOps: 20, maxOps: 60 }), { seed, numRuns: runs });
const cluster = await LocalCluster.start();
const total = { scenarios: 0, stateUrl: 0, converged: 0, kills: 0, pgRestarts: 0, lockCuts: 0, lifecycleEvents: 0, truncates: 0, removalApprovals: 0, faultsInjected: 0, requests: 0, duplicateAdds: 0, deadLetters: 0, maxPeakConcurrency: 0, ms: 0 };
const failures: number[] = [];
try {
  for (const [i, s] of scenarios.entries()) {
    const r = await runScenario(s, cluster, (line) => process.stdout.write(`${line}\n`)).catch((e: unknown) => {
      // A failure of the harness itself (not a divergence) is reported and counted, and the soak goes on.
      process.stdout.write(`scenario ${i + 1}: harness error: ${e instanceof Error ? e.message : String(e)}\n`);
      return { converged: false, diff: ['harness error'], kills: 0, pgRestarts: 0, lockCuts: 0, lifecycle: [] as string[], approvals: 0, faultsInjected: 0, requests: 0, contactsExisted: 0, deadLetters: 0, peakConcurrency: 0, ms: 0 };
    });
    total.scenarios++;
    total.stateUrl += s.stateDb ? 1 : 0;
    total.converged += r.converged ? 1 : 0;
    total.kills += r.kills;
    total.pgRestarts += r.pgRestarts;
    total.lockCuts += r.lockCuts;
    total.lifecycleEvents += r.lifecycle.length;
    total.truncates += r.lifecycle.includes('truncate') ? 1 : 0;
    total.removalApprovals += r.approvals;
    total.faultsInjected += r.faultsInjected;
    total.requests += r.requests;
    total.duplicateAdds += r.contactsExisted;
    total.deadLetters += r.deadLetters;
    total.maxPeakConcurrency = Math.max(total.maxPeakConcurrency, r.peakConcurrency);
    total.ms += r.ms;
    if (!r.converged) failures.push(i);
    process.stdout.write(
      `scenario ${i + 1}/${runs}: ${r.converged ? 'converged' : 'DIVERGED'} ops=${s.ops.length} kills=${r.kills} pgRestarts=${r.pgRestarts} lockCuts=${r.lockCuts}${s.standby ? ' (standby)' : ''}${s.stateDb ? ' (stateUrl)' : ''}${r.lifecycle.length ? ` lifecycle=${r.lifecycle.join('+')}` : ''}${r.approvals ? ` approvals=${r.approvals}` : ''} faults=${r.faultsInjected} requests=${r.requests} ${(r.ms / 1000).toFixed(1)}s${r.converged ? '' : ` diff=${JSON.stringify(r.diff)}`}\n`,
    );
  }
} finally {
  await cluster.stop('immediate');
}
const rate = ((100 * total.converged) / Math.max(1, total.scenarios)).toFixed(1);
process.stdout.write(`\nsoak summary (seed ${seed}): ${JSON.stringify({ ...total, convergenceRate: `${rate}%`, meanSeconds: +(total.ms / 1000 / Math.max(1, total.scenarios)).toFixed(1) })}\n`);
if (failures.length > 0) {
  process.stdout.write(`replay: npm run soak -- --seed ${seed} --runs ${runs} (failed scenario indices: ${failures.join(', ')})\n`);
  process.exit(1);
}
