import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { BENCH_PG_SETTINGS } from './pg.js';

export interface MachineInfo {
  date: string;
  cpus: number;
  model: string;
  memoryGb: number;
  node: string;
  postgres: string;
  os: string;
  /** 1-minute load average when the run started and ended: other work on the machine. */
  loadAverage: { start: number; end?: number };
  postgresSettings: Record<string, string>;
  commit: string;
}

export function machineInfo(postgres: string): MachineInfo {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench', 'migrations'], { encoding: 'utf8' }).trim();
    if (dirty) commit += '+dirty';
  } catch {
    // not a git checkout
  }
  return {
    date: new Date().toISOString(),
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    postgres,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverage: { start: Math.round(os.loadavg()[0]! * 100) / 100 },
    // The throwaway cluster's non-default settings (src/db/local-cluster.ts plus the bench's own).
    postgresSettings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', ...Object.fromEntries(Object.entries(BENCH_PG_SETTINGS).map(([k, v]) => [k, String(v)])) },
    commit,
  };
}
