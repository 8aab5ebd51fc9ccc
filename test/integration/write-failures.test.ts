import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrator.js';
import { storeContext } from '../../src/store/context.js';
import { vendorCheck } from '../../src/mapping/vendor-check.js';
import { compileMapping } from '../../src/mapping/mapper.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { OutboxWriter } from '../../src/outbox/writer.js';
import { prepareSource } from '../../src/source/setup.js';
import { ReplicationStream } from '../../src/source/stream.js';
import type { ChangeSink } from '../../src/source/types.js';
import { testConfig, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A write that fails must take the writes queued behind it down with it: were one of them to run, it would
 * record as durable (and acknowledge) an LSN past changes that never reached the outbox. And a batch must
 * not fail for a reason a replay repeats.
 */
describe('outbox writes that fail', () => {
  let tdb: TestDatabase;
  let handle: DbHandle;
  let stream: ReplicationStream | undefined;

  beforeAll(async () => {
    tdb = await createTestDatabase('wfail');
    await tdb.query(USERS_DDL);
    handle = createDb({ url: tdb.url, schema: 'wooxy_cdc' });
    await migrate(handle.db, 'wooxy_cdc');
  });
  afterAll(async () => {
    await stream?.stop();
    await handle.close();
    await tdb.drop();
  });

  it('is not skipped over by the write queued behind it: after the reconnect every change arrives', async () => {
    const config = testConfig(tdb);
    const mappers = config.mappings.map((m) => compileMapping(m));
    const log = createLogger({ level: 'silent', pretty: false });
    const baseline = await prepareSource({ url: tdb.url, slot: tdb.slot, publication: tdb.publication, autoCreate: true, mappers, log });
    const writer = new OutboxWriter(storeContext(handle), new Map(mappers.map((m) => [m.name, m])), tdb.slot, null);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let failed = false;
    const sink: ChangeSink = {
      durableLsn: () => writer.durableLsn(),
      write: async (changes, durableLsn) => {
        if (!failed && changes.length > 0) {
          failed = true;
          await gate;
          throw new Error('injected: the outbox write failed');
        }
        return writer.write(changes, durableLsn);
      },
    };
    const metrics = createMetrics();
    stream = new ReplicationStream({
      url: tdb.url, slot: tdb.slot, publication: tdb.publication, applicationName: 'wfail', mappers, baseline, sink, log, metrics,
      // Two changes fill the buffer: the second transaction queues its write behind the first, synchronously.
      flushChanges: 2, flushIntervalMs: 5, baseBackoffMs: 10, maxBackoffMs: 50,
    });
    stream.start();
    await waitFor(() => stream?.isStreaming, { message: 'streaming' });

    await tdb.query(`INSERT INTO users (id, email) VALUES (1, 'a@example.com')`);
    await waitFor(() => failed, { message: 'the first write is in flight' });
    await tdb.query(`INSERT INTO users (id, email) VALUES (2, 'b@example.com'), (3, 'c@example.com')`);
    const changes = async () => (await metrics.changes.get()).values.reduce((n, v) => n + v.value, 0);
    await waitFor(async () => (await changes()) >= 3, { message: 'the second write is queued behind the first' });
    release();

    await waitFor(async () => (await tdb.query(`SELECT 1 FROM wooxy_cdc.outbox`)).rowCount === 3, { message: 'all three contacts in the outbox' });
    const keys = (await tdb.query<{ source_key: string }>(`SELECT source_key FROM wooxy_cdc.outbox ORDER BY source_key`)).rows.map((r) => r.source_key);
    expect(keys).toEqual(['1', '2', '3']);
  });

  it('an invalid contact changed twice in one batch is dead-lettered once, and the batch goes through', async () => {
    const mappers = testConfig(tdb).mappings.map((m) => compileMapping(m, vendorCheck));
    const writer = new OutboxWriter(storeContext(handle), new Map(mappers.map((m) => [m.name, m])), 'other_slot', null);
    const row = (email: string) => ({ id: '50', email, phone: null, first_name: null, last_name: null, bio: null });
    await writer.write(
      [
        { kind: 'insert', mapping: 'users', key: '50', row: row('not-an-email'), lsn: '0/10', xid: 900 },
        { kind: 'update', mapping: 'users', key: '50', row: row('still-not-an-email'), lsn: '0/20', xid: 901 },
        { kind: 'insert', mapping: 'users', key: '51', row: { ...row('ok@example.com'), id: '51' }, lsn: '0/20', xid: 901 },
      ],
      '0/30',
    );
    const dead = await tdb.query<{ source_key: string; payload: { email: string } }>(`SELECT source_key, payload FROM wooxy_cdc.dead_letters`);
    expect(dead.rows).toEqual([{ source_key: '50', payload: expect.objectContaining({ email: 'still-not-an-email' }) }]);
    expect((await tdb.query(`SELECT 1 FROM wooxy_cdc.outbox WHERE source_key = '51'`)).rowCount).toBe(1);
  });
});
