import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../src/db/local-cluster.js';
import { runScenario, scenarioArbitrary, type Scenario } from '../helpers/scenario.js';

/**
 * Randomized convergence with faults, SIGKILLs, a Postgres restart and leadership moving to a standby. This file starts its own
 * throwaway cluster, because it restarts Postgres, which must not disturb the other suites' shared server.
 * `npm run soak` runs the same scenarios by the hundred; a failure prints fast-check's seed and path to replay.
 */
/**
 * A generated workload with every fault switched on, two kills and a Postgres restart; with a standby, the
 * leader's lock session is also cut three times, so leadership moves between the two instances; that one keeps
 * the connector's state in a second database (postgres.stateUrl).
 */
function fixed(seed: number, webhook: boolean, standby: boolean, stateDb: boolean): Scenario {
  const [base] = fc.sample(scenarioArbitrary({ minOps: 30, maxOps: 30 }), { seed, numRuns: 1 });
  return {
    ...base!,
    faults: { serverErrorRate: 0.15, timeoutRate: 0.03, rateLimitRate: 0.1, contactErrorRate: 0.2, webhookDropRate: 0.3, randomOrder: true, webhook },
    kills: [6, 19],
    pgRestartAt: 12,
    standby,
    stateDb,
    lockCuts: standby ? [3, 15, 24] : [],
    // A compatible and a breaking schema change with its fix, a mapping change and a TRUNCATE (held, then
    // approved): every lifecycle event.
    schema: standby ? { compatibleAt: null, breakAt: 20, fixAt: null, remapAt: 8, truncateAt: 17 } : { compatibleAt: 4, breakAt: 9, fixAt: 16, remapAt: 22, truncateAt: 26 },
  };
}

describe('randomized convergence under faults', () => {
  let cluster: LocalCluster;
  beforeAll(async () => {
    cluster = await LocalCluster.start();
  });
  afterAll(async () => cluster.stop('immediate'));

  it('always ends with the list equal to the table', async () => {
    const seen = { kills: 0, pgRestarts: 0, lockCuts: 0, lifecycle: 0, approvals: 0, faults: 0, webhook: 0, poll: 0, stateDb: 0 };
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary({ minOps: 15, maxOps: 40 }), async (s: Scenario) => {
        // What the harness saw (kills, restarts, and the connector's last log lines when it did not converge),
        // so a failure says more than its first unmet expectation.
        const lines: string[] = [];
        const r = await runScenario(s, cluster, (line) => lines.push(line));
        seen.kills += r.kills;
        seen.pgRestarts += r.pgRestarts;
        seen.lockCuts += r.lockCuts;
        seen.lifecycle += r.lifecycle.length;
        seen.approvals += r.approvals;
        seen.faults += r.faultsInjected;
        seen[s.faults.webhook ? 'webhook' : 'poll']++;
        if (s.stateDb) seen.stateDb++;
        expect({ diff: r.diff, converged: r.converged, deadLetters: r.deadLetters, peakConcurrencyOk: r.peakConcurrency <= 10 }, lines.join('\n')).toEqual({
          diff: [],
          converged: true,
          deadLetters: 0,
          peakConcurrencyOk: true,
        });
      }),
      {
        numRuns: Number(process.env.CONVERGENCE_RUNS ?? 3),
        // Every CI run covers kills, a Postgres restart, faults, leadership moves, both resolution paths and both
        // placements of the state (the source database; postgres.stateUrl, a second one) at least once.
        examples: [[fixed(1, true, false, false)], [fixed(2, false, true, true)]],
        endOnFailure: true,
      },
    );
    process.stdout.write(`[convergence] ${JSON.stringify(seen)}\n`);
  }, 600_000);
});
