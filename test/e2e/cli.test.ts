import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Runs the CLI from source, as a child process, the way a user (or an orchestrator) runs it. */
export function cli(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    timeout: 60_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

const env = { DATABASE_URL: 'postgres://u:pw@localhost/app', WOOXY_ACCESS_TOKEN: 'tok', WOOXY_LIST_ID: 'l1' };

describe('wooxy-cdc CLI', () => {
  it('validates the example config (exit 0)', () => {
    const r = cli(['validate-config', '--config', 'config/example.yaml'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid; 1 mapping/);
  });

  it('exits 2 with one line per bad path', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'postgres:\n  url: ${DATABASE_URL}\nwooxy:\n  accessToken: x\n  maxInFlight: 50\nmappings:\n  - table: users\n    contactListId: l\n    fields:\n      email: 12\n');
    const r = cli(['validate-config', '--config', file], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('wooxy.maxInFlight: Wooxy allows at most 10 concurrent requests');
    expect(r.stderr).toContain('mappings[0].fields.email: expected a column name');
  });

  it('exits 2 when the file is missing, and prints help', () => {
    expect(cli(['validate-config', '--config', '/nope.yaml']).code).toBe(2);
    const help = cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/validate-config/);
    expect(help.stdout).toMatch(/migrate/);
  });
});
