/**
 * What an operator's log pipeline gets from the real CLI: one JSON object per line when stdout is not a
 * terminal, levels by name, LOG_LEVEL over the file's log.level, no key twice in a line; and --version.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { runCli, startConnectorProcess, waitStreaming, writeConfig } from '../helpers/child.js';
import { USERS_DDL } from '../helpers/connector.js';
import { duplicateKeys } from '../helpers/json-lines.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

describe('the CLI’s output', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;

  beforeAll(async () => {
    emulator = await createEmulator({ tokens: ['tok'], lists: [{ id: 'l' }] });
    tdb = await createTestDatabase('logs');
    await tdb.query(USERS_DDL);
    await tdb.query(`INSERT INTO users (id, email) VALUES (1, 'a@example.com')`);
  });
  afterAll(async () => {
    await emulator.close();
    await tdb.drop();
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    expect(r).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('run: JSON lines with level names, LOG_LEVEL over log.level, each key once', async () => {
    const configFile = writeConfig({
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication },
      wooxy: { accessToken: 'tok', baseUrl: emulator.url },
      http: { port: 0 },
      log: { level: 'warn' },
      mappings: [{ table: 'public.users', contactListId: 'l', fields: { userId: 'id', email: 'email' } }],
    });
    const running = startConnectorProcess(configFile, { LOG_LEVEL: 'debug' });
    try {
      // "streaming from the replication slot" is an info line: the file's warn alone would hide it.
      await waitStreaming(running, tdb.query, tdb.slot);
      // A debug line ("Wooxy call answered") once the row's contact reached the list.
      await waitFor(() => emulator.contacts('l')?.length === 1 && running.output().includes('"level":"debug"'), { message: 'the contact delivered, and debug lines' });
    } finally {
      running.proc.kill('SIGTERM');
    }
    expect(await running.exited).toEqual({ code: 0, signal: null });
    const lines = running.output().split('\n').filter(Boolean);
    const parsed = lines.map((l) => {
      try {
        return JSON.parse(l) as { level: unknown; msg: string; slot?: string };
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
    const levels = new Set(parsed.map((p) => p.level));
    expect([...levels].filter((l) => !['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(l as string))).toEqual([]);
    expect(levels).toContain('info');
    expect(levels).toContain('debug');
    const repeated = lines.map((l) => [duplicateKeys(l), l] as const).filter(([d]) => d.length > 0);
    expect(repeated, 'lines with a key twice').toEqual([]);
    expect(parsed.find((p) => p.msg === 'streaming from the replication slot')).toMatchObject({ level: 'info', slot: tdb.slot });
  });
});
