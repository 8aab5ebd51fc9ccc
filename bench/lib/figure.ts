import { readdirSync, readFileSync } from 'node:fs';

/** One line of the results table: a measured figure, what it is compared with, and its target. */
export interface Figure {
  id: string;
  title: string;
  /** What was measured, for people: "15,600 changes/s". */
  measured: string;
  /** What it is compared against: "raw decode 82,000 changes/s". */
  against: string;
  /** The figure as a ratio against its limit or baseline; null when none applies. */
  ratio: number | null;
  target: string;
  /** Scaled so that 1 is exactly the target and more is better (the chart's bar); null: no target. */
  score: number | null;
  pass: boolean | null;
  /** Everything else measured: per-repeat values, breakdowns, settings. */
  details: Record<string, unknown>;
}

export interface ScenarioContext {
  quick: boolean;
  log: (message: string) => void;
}

export type Scenario = (ctx: ScenarioContext) => Promise<Figure[]>;

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU seconds a process has used (user + system, 100 ticks/s), from /proc/<pid>/stat; null when it is gone. */
export function procCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) " the fields start at `state` (field 3): utime and stime (14, 15) are at 11 and 12.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of a whole Postgres cluster by kind of process: the postmaster's live children by their
 * process title (walsender, client backend, autovacuum, checkpointer…) plus what the postmaster has reaped
 * from exited ones (cutime/cstime, "exited"). Differences of two readings give the server's CPU over a phase.
 */
export function clusterCpu(dataDir: string): Record<string, number> {
  const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  const fieldsOf = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  };
  const own = fieldsOf(postmaster);
  // utime, stime, cutime, cstime: fields 14–17, at 11–14 here; the parent pid is field 4, at 1.
  const out: Record<string, number> = { postmaster: (Number(own[11]) + Number(own[12])) / 100, exited: (Number(own[13]) + Number(own[14])) / 100 };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const f = fieldsOf(Number(entry));
      if (Number(f[1]) !== postmaster) continue;
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const kind = /walsender/.test(title) ? 'walsender' : /autovacuum/.test(title) ? 'autovacuum' : /\d+\.\d+\.\d+\.\d+\(\d+\)/.test(title) ? 'backends' : 'background';
      out[kind] = (out[kind] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export function cpuDelta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const k of new Set([...Object.keys(after), ...Object.keys(before)])) d[k] = Math.round(((after[k] ?? 0) - (before[k] ?? 0)) * 100) / 100;
  d.total = Math.round(Object.values(d).reduce((a, b) => a + b, 0) * 100) / 100;
  return d;
}
