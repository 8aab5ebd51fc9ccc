import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { etaSeconds, formatDuration, formatOutcome, formatProgress, LogProgress, type Progress } from '../../src/snapshot/report.js';
import { parseChunkSize, selectMappings } from '../../src/snapshot/session.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { parseConfig } from '../../src/config/loader.js';
import { Writable } from 'node:stream';

const p = (over: Partial<Progress> = {}): Progress => ({ mapping: 'users', mode: 'snapshot', rowsDone: 31_000, rowsTotal: 50_000, runRows: 31_000, elapsedMs: 2_000, ...over });

describe('snapshot progress', () => {
  it('reports rows, rate and ETA over this run (a resumed run counts only its own rows for the rate)', () => {
    expect(formatProgress(p())).toBe('users: 31,000/50,000 rows (62%), 15,500 rows/s, ETA 1.2s');
    // Resumed after 30,000 rows: 1,000 rows in 2 s is 500 rows/s, and 19,000 rows remain.
    expect(etaSeconds(p({ runRows: 1_000 }))).toBe(38);
    expect(formatProgress(p({ rowsTotal: null }))).toBe('users: 31,000 rows, 15,500 rows/s');
    expect(etaSeconds(p({ runRows: 0 }))).toBeNull();
  });

  it('formats durations and outcomes for people', () => {
    expect([formatDuration(4.44), formatDuration(75), formatDuration(3 * 3600 + 5 * 60)]).toEqual(['4.4s', '1m15s', '3h05m']);
    const outcome = { mapping: 'users', finished: true, alreadyDone: false, resumedAfter: null, rows: 20, chunks: 1, applied: 20, enqueued: 20, deadLettered: 0, reconciled: false, removed: 0, seconds: 0.5 };
    expect(formatOutcome('resync', outcome)).toBe('resync users: 20 rows in 0.5s (40 rows/s), 20 queued, 0 dead-lettered');
    expect(formatOutcome('snapshot', { ...outcome, reconciled: true, removed: 3 })).toBe('snapshot users: 20 rows in 0.5s (40 rows/s), 20 queued, 3 removal(s) of rows gone, 0 dead-lettered');
  });

  it('logs at most one line per interval, and always the last', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const reporter = new LogProgress(log, 60_000);
    reporter.update(p());
    reporter.update(p({ rowsDone: 40_000 }));
    reporter.done(p({ rowsDone: 50_000, runRows: 50_000, elapsedMs: 4_000 }));
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      'snapshot progress: users: 31,000/50,000 rows (62%), 15,500 rows/s, ETA 1.2s',
      'snapshot of users done: 50,000 rows in 4.0s (12,500 rows/s)',
    ]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ mapping: 'users', rowsDone: 31_000, rowsTotal: 50_000, rowsPerSecond: 15_500, etaSeconds: 1 });
  });

  it('validates the command-line choices with the USAGE_INVALID code (exit 2)', () => {
    expect(parseChunkSize(undefined, 5000)).toBe(5000);
    expect(parseChunkSize('700', 5000)).toBe(700);
    for (const bad of ['0', '-1', '1.5', 'x', '100001']) expect(() => parseChunkSize(bad, 5000)).toThrow(expect.objectContaining({ code: 'USAGE_INVALID' }));
    const config = parseConfig({ postgres: { url: 'postgres://x/y' }, wooxy: { accessToken: 't' }, mappings: [{ table: 'users', contactListId: 'l', fields: { email: 'email' } }] }, {});
    const mappers = config.mappings.map((m) => compileMapping(m));
    expect(selectMappings(mappers, undefined).map((m) => m.name)).toEqual(['users']);
    expect(() => selectMappings(mappers, 'nope')).toThrow(expect.objectContaining({ code: 'USAGE_INVALID' }));
  });
});
