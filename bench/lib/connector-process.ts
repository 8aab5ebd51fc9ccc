import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { BENCH_TOKEN } from './emulator.js';
import { USERS_MAPPING } from './pg.js';

export const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli/main.js');
/** The package's bin, as `npx wooxy-cdc` runs it: a shell script that execs node with the CLI's own heap settings. */
export const BIN = path.resolve(import.meta.dirname, '../../bin/wooxy-cdc');

export interface ChildConnector {
  proc: ChildProcess;
  pid: number;
  /** The last lines of its output (JSON log lines). */
  tail: () => string;
  /** Resolves when the log says it is streaming from the slot (the n-th time, counting from this process's start). */
  streaming: () => Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Peak and current resident set from /proc/<pid>/status (MB); null once the process is gone. */
  memory: () => { hwmMb: number; rssMb: number } | null;
}

export interface ChildConfig {
  dbUrl: string;
  /** postgres.stateUrl: the connector's tables and leader lock in another database or server. */
  stateUrl?: string;
  /** Other postgres.* settings (heartbeatIntervalMs, …). */
  postgres?: Record<string, unknown>;
  emulatorUrl: string;
  slot?: string;
  capture?: Record<string, number>;
  delivery?: Record<string, number>;
  reconcile?: Record<string, number>;
  snapshot?: Record<string, number | boolean>;
  history?: Record<string, number>;
}

/** The configuration a user would write, with the bench's database, emulator and mapping. */
export async function writeChildConfig(c: ChildConfig): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wooxy-bench-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(
    file,
    stringify({
      postgres: { url: c.dbUrl, ...(c.stateUrl ? { stateUrl: c.stateUrl } : {}), slot: c.slot ?? 'wooxy_cdc', publication: 'wooxy_cdc', ...c.postgres },
      wooxy: { baseUrl: c.emulatorUrl, accessToken: '${WOOXY_ACCESS_TOKEN}' },
      capture: c.capture ?? {},
      delivery: c.delivery ?? {},
      reconcile: c.reconcile ?? {},
      snapshot: c.snapshot ?? {},
      history: c.history ?? {},
      http: { port: 0 },
      log: { level: 'info' },
      mappings: [USERS_MAPPING],
    }),
  );
  return file;
}

/**
 * Runs the compiled CLI (`npm run build` first) as its own process, the way it runs in production: with these
 * node flags, or `'bin'`: through the package's bin with no NODE_OPTIONS, as a user's `npx wooxy-cdc run` does
 * (the script execs node, so the pid sampled is the connector's).
 */
export function startChild(configFile: string, nodeArgs: string[] | 'bin' = [], env: Record<string, string> = {}): ChildConnector {
  // BENCH_CHILD_NODE_ARGS: extra node flags for every connector process, e.g. "--cpu-prof --cpu-prof-dir=bench/results/prof".
  const extra = process.env.BENCH_CHILD_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const [command, args] = nodeArgs === 'bin' ? [BIN, ['run', '--config', configFile]] : [process.execPath, [...extra, ...nodeArgs, CLI, 'run', '--config', configFile]];
  const proc = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', WOOXY_ACCESS_TOKEN: BENCH_TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let streamCount = 0;
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    const text = d.toString();
    const hits = text.split('streaming from the replication slot').length - 1;
    if (hits > 0) {
      streamCount += hits;
      for (const w of waiters.splice(0)) w();
    }
    out = (out + text).slice(-20_000);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const pid = proc.pid!;
  return {
    proc,
    pid,
    tail: () => out,
    exited,
    streaming: () =>
      new Promise<number>((resolve, reject) => {
        const started = Date.now();
        if (streamCount > 0) return resolve(0);
        waiters.push(() => resolve(Date.now() - started));
        void exited.then(() => reject(new Error(`connector exited before streaming:\n${out}`)));
      }),
    memory: () => {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        const rss = /VmRSS:\s+(\d+) kB/.exec(status);
        return hwm && rss ? { hwmMb: Number(hwm[1]) / 1024, rssMb: Number(rss[1]) / 1024 } : null;
      } catch {
        return null;
      }
    },
  };
}

/** SIGTERM, then SIGKILL if it has not drained within `graceMs`. */
export async function stopChild(child: ChildConnector, graceMs = 15_000): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}
