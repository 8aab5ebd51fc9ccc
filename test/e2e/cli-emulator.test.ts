/** `wooxy-cdc emulator` as a user runs it: prints its URL, serves the API, stops cleanly on SIGTERM. */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WooxyClient, createLimiter } from '../../src/wooxy/index.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wooxy-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out, exited };
}

describe('wooxy-cdc emulator', () => {
  it('serves the API from a YAML config until SIGTERM', async () => {
    const file = join(dir, 'emulator.yaml');
    await writeFile(file, 'tokens: [cli-token]\nlists: [{ id: crm }]\nprocessing: { delayMs: 0 }\n');
    const { child, out, exited } = runCli(['emulator', '--port', '0', '--config', file]);
    try {
      const url = await waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+\/v3)/.exec(out.stdout)?.[1], { timeoutMs: 20_000, message: `URL on stdout (stderr: ${out.stderr})` });
      const client = new WooxyClient({ accessToken: 'cli-token', baseUrl: url, limiter: createLimiter() });
      const { requestId } = await client.add({ contactListId: 'crm', contacts: [{ userId: 'u1' }] });
      const status = await waitFor(async () => (await client.find([requestId])).requests[requestId]?.status === 'done', { message: 'processed' });
      expect(status).toBe(true);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 30_000);

  it('a bad --port is a configuration error (exit 2)', async () => {
    const { out, exited } = runCli(['emulator', '--port', 'eighty']);
    expect(await exited).toBe(2);
    expect(out.stderr).toMatch(/--port/);
  }, 30_000);
});
