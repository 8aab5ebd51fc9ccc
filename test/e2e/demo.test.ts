import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/child.js';

/**
 * The README's first command, as a user runs it: its own throwaway Postgres (not the suite's), the emulator,
 * the connector and the scripted workload, all from one process, ending with a converged summary and exit 0.
 */
describe('wooxy-cdc demo', () => {
  it('runs start to end and converges', async () => {
    const r = await runCli(['demo', '--rows', '100', '--log-level', 'warn'], {}, 240_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^Result: converged — the emulator's list equals the table projected through the mapping\.$/m);
    expect(r.stdout).toMatch(/^ {2}Contacts in the emulator +(\d+) \(list demo-list\)$/m);
    const expected = /^ {2}Contacts expected +(\d+)$/m.exec(r.stdout)?.[1];
    expect(r.stdout).toMatch(new RegExp(`^ {2}Contacts in the emulator +${expected} `, 'm'));
    // The national numbers reached the list in E.164 (compared field by field above); the unusable one is the one
    // dead letter, naming the value and the rule.
    expect(r.stdout).toMatch(/^ {2}Dead letters +1$/m);
    expect(r.stdout).toMatch(/^ {4}users\/1101 ROW_INVALID: phoneNumber \(column phone\): "0151 1234 5678 9012 3" is not a possible phone number: too long \(format e164, defaultCountry DE\)/m);
    expect(r.stdout).toMatch(/^ {2}Wooxy requests +\d+ sent, \d+ resolved .*, 0 unresolved$/m);
  }, 300_000);
});
