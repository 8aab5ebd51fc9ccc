import { describe, expect, it } from 'vitest';
import { assess } from '../../src/admin/health.js';
import type { Status } from '../../src/admin/status.js';
import { renderCheck } from '../../src/cli/status.js';
import { parseConfig } from '../../src/config/loader.js';

const config = parseConfig(
  {
    postgres: { url: 'postgres://x@localhost/app', slot: 'wooxy_cdc', walWarnBytes: 1_073_741_824 },
    wooxy: { accessToken: 't' },
    mappings: [{ table: 'public.users', contactListId: 'crm', fields: { userId: 'id', email: 'email' } }],
  },
  {},
);

/** A report of a healthy connector; each test breaks one thing. */
function healthy(): Omit<Status, 'health' | 'problems'> {
  return {
    generatedAt: '2026-11-30T10:00:00.000Z',
    postgres: { reachable: true, error: null },
    slot: { name: 'wooxy_cdc', exists: true, active: true, activePid: 42, confirmedFlushLsn: '0/1', restartLsn: '0/1', lagBytes: 0, retainedWalBytes: 1_000, walStatus: 'reserved', durableLsn: '0/1' },
    publication: { name: 'wooxy_cdc', exists: true },
    leader: { pid: 41, applicationName: 'wooxy-cdc host pid 7', clientAddr: null, backendStart: null },
    term: { epoch: '3', electedAt: '2026-11-30T09:00:00.000Z' },
    schema: { name: 'wooxy_cdc', migrated: true, pending: [] },
    lag: { bytes: 0, seconds: null },
    mappings: [{ name: 'users', table: 'public.users', listId: 'crm', state: 'running', stop: null, pause: null }],
    outbox: { pending: 0, due: 0, inflight: 0, oldestPendingAgeSeconds: null },
    requests: { unresolved: 0, oldestUnresolvedAgeSeconds: null, pastWarning: 0, warnAfterHours: 144 },
    deadLetters: { count: 0, byCode: {}, byMapping: {} },
    removals: [],
    orphans: [],
    snapshot: [],
    sourceGaps: [],
    lastErrors: { source: null, delivery: null, reconciliation: null, deadLetters: null },
  };
}

const judge = (s: Omit<Status, 'health' | 'problems'>) => assess(s, config, 'my.yaml');

describe('status health: what counts as degraded and down', () => {
  it('healthy: no problem, and an old error of any stage is history, not a problem', () => {
    const s = healthy();
    s.lastErrors.deadLetters = { code: 'WOOXY_VALIDATION', mapping: 'users', key: '7', message: 'old', at: '2026-11-01T00:00:00.000Z', ageSeconds: 2_500_000 };
    s.lastErrors.delivery = { code: 'DELIVERY_PAUSED', mapping: 'users', key: null, message: 'WOOXY_UNAUTHORIZED: x', at: '2026-11-29T00:00:00.000Z', ageSeconds: 100_000 };
    expect(judge(s)).toEqual({ health: 'healthy', problems: [] });
  });

  it('Postgres unreachable is down, in one line and nothing else (nothing else is known)', () => {
    const s = healthy();
    s.postgres = { reachable: false, error: 'postgres.url: connect ECONNREFUSED 127.0.0.1:5432' };
    const j = judge(s);
    expect(j.health).toBe('down');
    expect(renderCheck({ ...s, ...j })).toBe('DOWN POSTGRES_UNREACHABLE: Postgres does not answer: postgres.url: connect ECONNREFUSED 127.0.0.1:5432 — check the connection string it names, the network, and that the server runs and accepts the role');
  });

  it('an invalidated slot, or a leader whose slot is not read, is down', () => {
    const lost = healthy();
    lost.slot = { ...lost.slot, active: false, walStatus: 'lost' };
    expect(judge(lost).problems.map((p) => [p.severity, p.code])).toEqual([['down', 'SLOT_INVALIDATED']]);
    const idle = healthy();
    idle.slot = { ...idle.slot, active: false };
    expect(judge(idle).problems.map((p) => [p.severity, p.code])).toEqual([['down', 'SLOT_INACTIVE']]);
  });

  it('retained WAL above postgres.walWarnBytes and a request past reconcile.warnAfterHours are degraded', () => {
    const s = healthy();
    s.slot.retainedWalBytes = 2 * 1_073_741_824;
    s.requests = { ...s.requests, unresolved: 3, pastWarning: 2 };
    const j = judge(s);
    expect(j.health).toBe('degraded');
    expect(j.problems.map((p) => p.message)).toEqual([
      'replication slot wooxy_cdc retains 2.0 GiB of WAL, more than postgres.walWarnBytes (1.0 GiB; wal_status reserved)',
      '2 request(s) unresolved for more than 144 h; Wooxy forgets a status after 7 days',
    ]);
  });

  it('an orphan the leading instance runs says the configurations differ; dead letters of an orphan are the orphan line, not a dead-letter line', () => {
    const s = healthy();
    s.orphans = [
      { mapping: 'people', pending: 0, inflight: 0, contacts: 10, deadLetters: 0, runByLeader: true, command: 'x' },
      { mapping: 'old', pending: 0, inflight: 0, contacts: 10, deadLetters: 2, runByLeader: false, command: 'wooxy-cdc orphans discard --mapping old --config my.yaml' },
      { mapping: 'gone', pending: 0, inflight: 0, contacts: 5, deadLetters: 0, runByLeader: false, command: 'y' },
    ];
    s.deadLetters = { count: 2, byCode: { ROW_INVALID: 2 }, byMapping: { old: 2 } };
    expect(judge(s).problems.map((p) => [p.code, p.mapping])).toEqual([
      ['CONFIGURATION_DIFFERS', 'people'],
      ['ORPHANED_ENTRIES', 'old'],
    ]);
  });

  it('each pause cause names what to check', () => {
    const s = healthy();
    s.mappings = [
      { ...s.mappings[0]!, state: 'paused', pause: { cause: 'WOOXY_LIST_REJECTED: Variable tier not found in list', since: '2026-11-30T09:30:00.000Z', ageSeconds: 60 } },
    ];
    expect(judge(s).problems).toEqual([
      {
        severity: 'degraded',
        code: 'DELIVERY_PAUSED',
        mapping: 'users',
        message: 'delivery of mapping users paused since 2026-11-30 09:30:00 UTC (WOOXY_LIST_REJECTED: Variable tier not found in list)',
        remedy: "create the variable on the list, or drop it from the mapping's variables; the contacts stay pending and delivery tries again every 30 s [Runbook: Delivery paused]",
      },
    ]);
  });
});

describe('status health: remedies point at the Runbook', () => {
  it('every [Runbook: X] a remedy names is an entry of the README Runbook', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync('README.md', 'utf8');
    const runbook = readme.slice(readme.indexOf('### Runbook'), readme.indexOf('### Snapshot and resync'));
    const entries = [...runbook.matchAll(/^\*\*([^*]+?)\.?\*\*/gm)].map((m) => m[1]!);
    const named = [...readFileSync('src/admin/health.ts', 'utf8').matchAll(/\[Runbook: ([^\]]+)\]/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(5);
    for (const name of named) expect(entries, name).toContain(name);
  });
});
