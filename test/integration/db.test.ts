import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/index.js';
import { durableSessionOptions } from '../../src/db/durability.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';

/**
 * The slot is acknowledged after an outbox commit, so the connector's sessions must commit durably whatever
 * the server's default: synchronous_commit = off would report commits a crash can still take back. A
 * session that cannot get a durable level makes the connector refuse to start.
 */
describe('connector sessions', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('db');
  });
  afterAll(async () => tdb.drop());

  const settingOfNewSessions = async (url = tdb.url): Promise<string[]> => {
    const options = await durableSessionOptions(url, 'wooxy-cdc-test');
    const handle = createDb({ url, schema: 'wooxy_cdc', poolSize: 3, options });
    try {
      // Three sessions at once, so each is a fresh connection of the pool.
      return await Promise.all(
        [1, 2, 3].map(async () => {
          const { rows } = await sql<{ s: string }>`SELECT current_setting('synchronous_commit') AS s, pg_sleep(0.05)`.execute(handle.db);
          return rows[0]!.s;
        }),
      );
    } finally {
      await handle.close();
    }
  };

  it('commit synchronously on a database that defaults to synchronous_commit = off', async () => {
    await tdb.query(`ALTER DATABASE ${tdb.database} SET synchronous_commit = off`);
    expect(await settingOfNewSessions()).toEqual(['on', 'on', 'on']);
  });

  it('keep a stronger level the database asks for', async () => {
    await tdb.query(`ALTER DATABASE ${tdb.database} SET synchronous_commit = remote_apply`);
    expect(await settingOfNewSessions()).toEqual(['remote_apply', 'remote_apply', 'remote_apply']);
  });

  it('refuse to start, naming the setting, where sessions cannot be made durable (a pooler that drops start-up options)', async () => {
    await tdb.query(`ALTER DATABASE ${tdb.database} SET synchronous_commit = off`);
    const proxy = await optionsDroppingProxy(new URL(tdb.url));
    try {
      const url = new URL(tdb.url);
      url.port = String((proxy.address() as AddressInfo).port);
      await expect(durableSessionOptions(url.toString(), 'wooxy-cdc-test')).rejects.toMatchObject({
        code: 'PG_DURABILITY',
        message: expect.stringMatching(/synchronous_commit is off .* ALTER ROLE <connector role> SET synchronous_commit = on/s),
      });
    } finally {
      proxy.close();
    }
  });
});

/**
 * A TCP proxy to Postgres that removes the `options` parameter from the start-up message, as a connection
 * pooler that does not forward start-up options would.
 */
async function optionsDroppingProxy(target: URL): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    let first = true;
    client.on('data', (chunk: Buffer) => {
      if (!first) return void upstream.write(chunk);
      first = false;
      // Int32 length, Int32 protocol, then name\0value\0 pairs and a final \0.
      const fields = chunk.subarray(8, chunk.length - 1).toString('utf8').split('\0');
      const kept: string[] = [];
      for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] !== 'options') kept.push(fields[i]!, fields[i + 1]!);
      const body = Buffer.from(`${kept.join('\0')}\0\0`, 'utf8');
      const header = Buffer.alloc(8);
      header.writeInt32BE(8 + body.length, 0);
      chunk.copy(header, 4, 4, 8);
      upstream.write(Buffer.concat([header, body]));
    });
    upstream.pipe(client);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    sockets.forEach((s) => s.destroy());
    return close(cb);
  };
  return server;
}
