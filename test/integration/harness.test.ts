import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

describe('test harness', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('harness');
  });
  afterAll(async () => db.drop());

  it('gives a real server with wal_level=logical', async () => {
    const { rows } = await db.query<{ wal_level: string }>('SHOW wal_level');
    expect(rows[0]?.wal_level).toBe('logical');
    expect(inject('pgSource')).toMatch(/DATABASE_URL|testcontainers|local cluster/);
  });

  it('streams an inserted row through a publication and slot with pg-logical-replication', async () => {
    await db.query('CREATE TABLE users (id bigint PRIMARY KEY, email text)');
    await db.query(`CREATE PUBLICATION ${db.publication} FOR TABLE users`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [db.slot]);

    const service = new LogicalReplicationService({ connectionString: db.url }, { acknowledge: { auto: false, timeoutSeconds: 0 } });
    const received: Pgoutput.Message[] = [];
    service.on('data', (_lsn: string, message: Pgoutput.Message) => void received.push(message));
    service.on('error', () => undefined);
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [db.publication] });
    void service.subscribe(plugin, db.slot).catch(() => undefined);
    try {
      await waitFor(() => !service.isStop(), { message: 'replication started' });
      await db.query(`INSERT INTO users VALUES (42, 'a@example.com')`);
      const insert = await waitFor(() => received.find((m): m is Pgoutput.MessageInsert => m.tag === 'insert'));
      // bigint arrives as a string from pgoutput's text format.
      expect(insert.new).toEqual({ id: '42', email: 'a@example.com' });
      expect(insert.relation.name).toBe('users');
      expect(received.map((m) => m.tag)).toEqual(expect.arrayContaining(['begin', 'relation', 'insert', 'commit']));
    } finally {
      await service.stop();
    }
  });
});
