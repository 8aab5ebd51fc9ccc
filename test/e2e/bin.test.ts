import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConfig } from '../helpers/child.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The package's command (`npx wooxy-cdc`, bin/wooxy-cdc) starts the connector with its heap limits, so users
 * who start it the plain way get the memory the benchmark measures; an explicit NODE_OPTIONS wins. Runs the
 * compiled CLI (dist/, built by `npm ci`).
 */
describe('bin/wooxy-cdc', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('bin');
    await tdb.query(`CREATE TABLE users (id bigint PRIMARY KEY, email text)`);
  });
  afterAll(async () => tdb.drop());

  const heapLimit = async (nodeOptions?: string): Promise<number> => {
    const config = writeConfig({
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: 'tok', baseUrl: 'http://127.0.0.1:9/v3' },
      http: { port: 0 },
      mappings: [{ table: 'users', contactListId: 'l', fields: { userId: 'id', email: 'email' } }],
    });
    const proc = spawn('bin/wooxy-cdc', ['run', '--config', config], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => /"msg":"wooxy-cdc running"/.test(out), { timeoutMs: 30_000, message: `running\n${out}` });
      return Number(/"heapLimitMb":(\d+)/.exec(out)?.[1]);
    } finally {
      proc.kill('SIGTERM');
      // One process: the signal reached the connector itself, which drains and exits 0.
      expect(await exited).toBe(0);
    }
  };

  it('starts the connector with its heap limits, and leaves an explicit NODE_OPTIONS alone', async () => {
    expect(await heapLimit()).toBeLessThan(150);
    expect(await heapLimit('--max-old-space-size=400')).toBeGreaterThanOrEqual(400);
  });
});
