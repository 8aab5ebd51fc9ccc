import { describe, expect, it } from 'vitest';
import { MappingHealth } from '../../../src/delivery/health.js';
import { createLogger } from '../../../src/observability/logger.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import type { PauseChange } from '../../../src/store/pauses.js';
import { WooxyError } from '../../../src/wooxy/errors.js';

const health = (changes: PauseChange[]) =>
  new MappingHealth({ log: createLogger({ level: 'silent' }), metrics: createMetrics(), pauseRetryMs: 1_000, pauseAfterFailures: 3, onChange: (c) => changes.push(c) });

describe('MappingHealth: what other processes are told of pauses', () => {
  it('a refusal pauses and says so once per cause; the first accepted call ends it', () => {
    const changes: PauseChange[] = [];
    const h = health(changes);
    const unauthorized = new WooxyError('WOOXY_UNAUTHORIZED', { endpoint: 'contacts/add', retryable: false, messages: ['Invalid access token'] });
    h.refused('users', unauthorized);
    h.refused('users', unauthorized);
    expect(changes).toEqual([{ mapping: 'users', paused: true, cause: 'WOOXY_UNAUTHORIZED: Invalid access token' }]);
    const missing = new WooxyError('WOOXY_LIST_NOT_FOUND', { endpoint: 'contacts/add', retryable: false, messages: ['List with id crm not found!'] });
    h.refused('users', missing);
    expect(changes.at(-1)).toEqual({ mapping: 'users', paused: true, cause: 'WOOXY_LIST_NOT_FOUND: List with id crm not found!' });
    expect(h.active(['users', 'orders'])).toEqual(['orders']);
    h.accepted('users');
    expect(changes.at(-1)).toEqual({ mapping: 'users', paused: false, cause: 'WOOXY_LIST_NOT_FOUND: List with id crm not found!' });
    expect(changes).toHaveLength(3);
  });

  it('transient failures below pauseAfterFailures are no pause, and their end is no resume', () => {
    const changes: PauseChange[] = [];
    const h = health(changes);
    h.failed('users', new Error('socket hang up'));
    h.failed('users', new Error('socket hang up'));
    h.accepted('users');
    expect(changes).toEqual([]);
    for (let i = 0; i < 3; i++) h.failed('users', Object.assign(new Error('Bad Gateway'), { code: 'WOOXY_SERVER_ERROR' }));
    expect(changes).toEqual([{ mapping: 'users', paused: true, cause: 'WOOXY_SERVER_ERROR: Bad Gateway' }]);
  });
});
