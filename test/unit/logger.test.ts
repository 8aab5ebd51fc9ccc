import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/loader.js';
import { createLogger } from '../../src/observability/logger.js';
import { duplicateKeys } from '../helpers/json-lines.js';

function capture(level = 'debug') {
  const lines: string[] = [];
  const destination = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...c.toString().split('\n').filter(Boolean)), cb()) });
  return { log: createLogger({ level, destination }), lines };
}

describe('log lines', () => {
  it('are JSON with the level by name', () => {
    const { log, lines } = capture();
    log.debug('d');
    log.info({ n: 1 }, 'i');
    log.error(new Error('boom'), 'e');
    expect(lines.map((l) => (JSON.parse(l) as { level: unknown }).level)).toEqual(['debug', 'info', 'error']);
  });

  it('carry each key once: a call repeating a child logger’s binding does not print it again', () => {
    const { log, lines } = capture();
    const source = log.child({ stage: 'source', slot: 'wooxy_cdc' });
    // The pattern of "streaming from the replication slot": the child has slot, the call passes it again.
    source.info({ slot: 'wooxy_cdc', lsn: '0/16B3748' }, 'streaming from the replication slot');
    source.child({ mapping: 'users' }).warn({ mapping: 'users', stage: 'source', rows: 3 }, 'nested');
    expect(lines.map(duplicateKeys)).toEqual([[], []]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ stage: 'source', slot: 'wooxy_cdc', lsn: '0/16B3748', msg: 'streaming from the replication slot' });
    expect(JSON.parse(lines[1]!)).toMatchObject({ stage: 'source', slot: 'wooxy_cdc', mapping: 'users', rows: 3 });
  });

  it('keep a call’s value that contradicts the binding, under `shadowed`, rather than print the key twice or lose it', () => {
    const { log, lines } = capture();
    log.child({ slot: 'a' }).info({ slot: 'b', big: 10n }, 'contradicts');
    expect(duplicateKeys(lines[0]!)).toEqual([]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ slot: 'a', shadowed: { slot: 'b' } });
  });

  it('the duplicate-key check itself sees a repeated key that JSON.parse hides', () => {
    expect(duplicateKeys('{"slot":"a","x":{"slot":"b","y":[{"k":1},{"k":2}]},"slot":"a"}')).toEqual(['slot']);
    expect(duplicateKeys('{"a":"{\\"a\\":1,","b":["a","a"]}')).toEqual([]);
  });
});

describe('LOG_LEVEL', () => {
  const raw = (level?: string) => ({
    postgres: { url: 'postgres://h/db' },
    wooxy: { accessToken: 't' },
    ...(level ? { log: { level } } : {}),
    mappings: [{ table: 'users', contactListId: 'l', fields: { email: 'email' } }],
  });

  it('overrides the file’s log.level, and applies when the file has none', () => {
    expect(parseConfig(raw('warn'), {}).log.level).toBe('warn');
    expect(parseConfig(raw('warn'), { LOG_LEVEL: 'debug' }).log.level).toBe('debug');
    expect(parseConfig(raw(), { LOG_LEVEL: 'error' }).log.level).toBe('error');
    expect(parseConfig(raw('warn'), { LOG_LEVEL: '' }).log.level).toBe('warn');
  });

  it('an unknown level is a configuration problem named LOG_LEVEL', () => {
    expect(() => parseConfig(raw('warn'), { LOG_LEVEL: 'verbose' })).toThrow(ConfigError);
    expect(() => parseConfig(raw('warn'), { LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal, silent; got "verbose"/);
  });
});
