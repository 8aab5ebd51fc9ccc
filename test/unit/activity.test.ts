import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ActivitySummary, DeadLetterLog } from '../../src/observability/activity.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';

const capture = () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...c.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)), cb()) }) });
  return { lines, log };
};

describe('the activity summary', () => {
  it('says what happened in the last minute while anything happens, and nothing while idle', async () => {
    const { lines, log } = capture();
    const metrics = createMetrics();
    const summary = new ActivitySummary(metrics, log);
    await summary.tick();
    await summary.tick();
    expect(lines).toEqual([]);
    metrics.changes.inc({ mapping: 'users', kind: 'insert' }, 1200);
    metrics.contactsSent.inc({ op: 'add' }, 1100);
    metrics.requestStatuses.inc({ status: 'done', via: 'poll' }, 11);
    metrics.deadLetters.inc({ mapping: 'users', code: 'ROW_INVALID' }, 2);
    metrics.outboxDepth.set({ state: 'pending' }, 100);
    await summary.tick();
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'info',
        captured: 1200,
        sent: 1100,
        resolved: 11,
        deadLettered: 2,
        pending: 100,
        msg: 'last minute: 1,200 changes captured, 1,100 contacts sent, 11 requests resolved, 2 dead-lettered; 100 pending, 0 in flight',
      }),
    ]);
  });
});

describe('dead letters in the log', () => {
  it('names each one at warn, at most N a minute, and sums up the rest', () => {
    const { lines, log } = capture();
    let t = 1_000_000;
    const dl = new DeadLetterLog(log, 2, () => t);
    for (let i = 0; i < 5; i++) dl.report({ mapping: 'users', key: String(i), code: 'ROW_INVALID', message: `bad ${i}` });
    t += 61_000;
    dl.report({ mapping: 'users', key: '9', code: 'ERR_CONTACT_EXISTS', message: 'x' });
    expect(lines.map((l) => [l.level, l.key ?? l.suppressed, l.msg])).toEqual([
      ['warn', '0', 'contact dead-lettered'],
      ['warn', '1', 'contact dead-lettered'],
      ['warn', 3, '3 more contact(s) dead-lettered in the last minute, not shown one by one; wooxy-cdc dead-letters list shows them all'],
      ['warn', '9', 'contact dead-lettered'],
    ]);
    expect(lines[0]).toMatchObject({ mapping: 'users', code: 'ROW_INVALID', humanError: 'bad 0' });
  });
});
