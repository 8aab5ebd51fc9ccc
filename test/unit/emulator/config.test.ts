/** The emulator's config schema: defaults, failures with the CONFIG_INVALID code, YAML loading. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DEV_TOKEN, DEFAULT_FAULTS, defaultEmulatorConfig, loadEmulatorConfig, parseEmulatorConfig } from '../../../src/emulator/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wooxy-emulator-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('emulator config', () => {
  it('fills defaults beside a minimal config', () => {
    const config = parseEmulatorConfig({ tokens: ['t'] });
    expect(config).toMatchObject({
      maxConcurrent: 10,
      retentionDays: 7,
      tokens: [{ token: 't', userId: '1', enabled: true }],
      lists: [],
      processing: { delayMs: 20, randomOrder: false, auto: true },
      webhooks: { maxAttempts: 5 },
      faults: {},
    });
  });

  it('has no upper bound on requestLogLimit, so a test can keep every call it makes', () => {
    expect(parseEmulatorConfig({ tokens: ['t'], requestLogLimit: 10_000_000 }).requestLogLimit).toBe(10_000_000);
  });

  it('rejects unknown keys, bad rates and bad variable names with CONFIG_INVALID', () => {
    for (const bad of [
      {},
      { tokens: [] },
      { tokens: ['t'], lists: [{ id: 'L', variables: [{ name: 'Bad_Name' }] }] },
      { tokens: ['t'], faults: { serverErrorRate: 1.5 } },
      { tokens: ['t'], faults: { nope: true } },
      { tokens: ['t'], procesing: {} },
    ]) {
      expect(() => parseEmulatorConfig(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
  });

  it('loads YAML', async () => {
    const file = join(dir, 'emulator.yaml');
    await writeFile(
      file,
      [
        'seed: 7',
        'tokens:',
        '  - token: abc',
        '  - { token: off, userId: "9", enabled: false }',
        'lists:',
        '  - id: crm',
        '    variables:',
        '      - { name: plan }',
        '      - { name: signupDate, type: date }',
        'processing: { delayMs: 0, randomOrder: true }',
        'faults: { latencyMs: 5, next: [{ kind: timeout }] }',
      ].join('\n'),
    );
    const config = await loadEmulatorConfig(file);
    expect(config.lists[0]?.variables).toEqual([
      { name: 'plan', type: 'string' },
      { name: 'signupDate', type: 'date' },
    ]);
    expect(config.faults.next).toEqual([{ kind: 'timeout', count: 1 }]);
    expect(config.tokens[1]).toEqual({ token: 'off', userId: '9', enabled: false });
  });

  it('docs/emulator.example.yaml, which documents every option, is valid and sets each one explicitly', async () => {
    const file = fileURLToPath(new URL('../../../docs/emulator.example.yaml', import.meta.url));
    const config = await loadEmulatorConfig(file);
    expect(config.lists.map((l) => l.id)).toEqual(['demo-list', 'YOUR_CONTACT_LIST_ID']);
    expect(Object.keys(config.faults).sort()).toEqual(Object.keys(DEFAULT_FAULTS).sort());
    expect(config.faults).toEqual(DEFAULT_FAULTS);
  });

  it('names the file when it is missing or not YAML', async () => {
    await expect(loadEmulatorConfig(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml/);
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'tokens: [unclosed');
    await expect(loadEmulatorConfig(file)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('the CLI default: token from WOOXY_ACCESS_TOKEN or the dev token, and the pages’ list', () => {
    expect(defaultEmulatorConfig({}).tokens[0]?.token).toBe(DEFAULT_DEV_TOKEN);
    expect(defaultEmulatorConfig({ WOOXY_ACCESS_TOKEN: 'from-env' }).tokens[0]?.token).toBe('from-env');
    expect(defaultEmulatorConfig({}).lists.map((l) => l.id)).toEqual(['demo-list', 'YOUR_CONTACT_LIST_ID']);
  });
});
