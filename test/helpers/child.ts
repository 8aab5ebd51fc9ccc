import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { waitFor } from './wait.js';

export interface RunningConnector {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Writes a YAML config to a temporary file (as a user would) and returns its path. */
export function writeConfig(config: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'wooxy-cfg-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

/** Starts `wooxy-cdc run` from source as a child process, the way it runs in production. */
export function startConnectorProcess(configFile: string, env: Record<string, string> = {}): RunningConnector {
  const args = env.BIGTX_DIST ? ['dist/src/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
  const proc = spawn(process.execPath, [...args, 'run', '--config', configFile], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...(process.env.CHILD_NODE_OPTIONS ? { NODE_OPTIONS: process.env.CHILD_NODE_OPTIONS } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { proc, output: () => out, exited };
}

/** Waits until the process holds its slot (streaming), or fails with its output. */
export async function waitStreaming(run: RunningConnector, query: (sql: string, v?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>, slot: string): Promise<void> {
  await waitFor(
    async () => {
      if (run.proc.exitCode !== null || run.proc.signalCode !== null) throw new Error(`connector exited early:\n${run.output()}`);
      const { rows } = await query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      return rows[0]?.active === true && /streaming from the replication slot/.test(run.output());
    },
    { timeoutMs: 30_000, message: 'connector streaming' },
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n--- connector output ---\n${run.output()}`);
  });
}

/** Runs a CLI command from source to its end without blocking the event loop (in-process servers keep answering). */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`wooxy-cdc ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
