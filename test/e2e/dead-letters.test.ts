import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector.js';
import { createDb } from '../../src/db/index.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { storeContext } from '../../src/store/context.js';
import { listDeadLetters, retryDeadLetters } from '../../src/store/dead-letters.js';
import { projectionDiff } from '../helpers/converge.js';
import { testConfig, testConnector, USERS_DDL } from '../helpers/connector.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const LIST = 'list-1';
const TOKEN = 'test-token';

interface DeadRow {
  source_key: string;
  error_code: string;
  human_error: string;
  attempts: number;
  blocked_key: string | null;
  blocked_field: string | null;
  blocked_value: string | null;
}

/**
 * Dead letters describe the present, against a real Postgres and the emulator: two rows that share an
 * identifier, and contacts that sync after all (a row fixed, a row fixed back to what Wooxy holds, a contact
 * sent again), each leaving the table and the gauge.
 */
describe('dead letters: shared identifiers, and contacts that sync after all', () => {
  let tdb: TestDatabase;
  let emulator: Emulator;
  let connector: Connector | undefined;

  beforeAll(async () => {
    tdb = await createTestDatabase('deadletters');
  });
  afterAll(async () => tdb.drop());

  beforeEach(async () => {
    await tdb.reset(USERS_DDL);
    emulator = await createEmulator({ seed: 11, tokens: [TOKEN], lists: [{ id: LIST }], processing: { delayMs: 10 } });
  });
  afterEach(async () => {
    await connector?.stop();
    connector = undefined;
    await emulator.close();
  });

  const start = async (delivery: Record<string, unknown> = {}) => {
    const config = testConfig(tdb, {
      postgres: { url: tdb.url, slot: tdb.slot, publication: tdb.publication, schema: 'wooxy_cdc', monitorIntervalMs: 100 },
      wooxy: { accessToken: TOKEN, baseUrl: emulator.url, timeoutMs: 2000, maxRetries: 3 },
      delivery: { idleIntervalMs: 30, maxAttempts: 6, ...delivery },
      reconcile: { pollIntervalMs: 100 },
      mappings: [{ table: 'public.users', contactListId: LIST, key: 'id', fields: { userId: 'id', email: 'email', phoneNumber: 'phone', firstName: 'first_name' } }],
    });
    connector = testConnector(config);
    await connector.start();
    await waitFor(() => connector!.replication?.isStreaming, { message: 'streaming' });
    return connector;
  };

  const dead = async (key?: string) =>
    (
      await tdb.query<DeadRow>(
        `SELECT source_key, error_code, human_error, attempts, blocked_key, blocked_field, blocked_value FROM wooxy_cdc.dead_letters
         WHERE $1::text IS NULL OR source_key = $1 ORDER BY source_key::int`,
        [key ?? null],
      )
    ).rows;
  const contact = (userId: string) => (emulator.contacts(LIST) ?? []).find((c) => c.userId === userId);
  const open = async () =>
    (await tdb.query<{ n: number }>(`SELECT (SELECT count(*) FROM wooxy_cdc.outbox)::int + (SELECT count(*) FROM wooxy_cdc.requests WHERE status = 'new')::int AS n`)).rows[0]!.n;
  /** The monitor's gauge, as a map "code" → contacts (series of value 0 left out). */
  const gauge = async (c: Connector) =>
    Object.fromEntries((await c.metrics.deadLetterContacts.get()).values.filter((v) => v.value > 0).map((v) => [String(v.labels.code), v.value]));
  const converged = async (c: Connector) => {
    await waitFor(async () => (await open()) === 0 && projectionDiff((await tdb.query('SELECT * FROM users')).rows, c.mappers[0]!, emulator).length === 0, {
      timeoutMs: 30_000,
      message: 'the list equals the table',
    });
  };
  /** Per-contact results Wooxy gave about a userId, over every request the connector sent. */
  const answersAbout = async (userId: string) => {
    const { rows } = await tdb.query<{ request_id: string }>('SELECT request_id FROM wooxy_cdc.requests');
    return rows.flatMap(({ request_id }) => {
      const r = emulator.request(request_id)?.results;
      if (!r) return [];
      return [...r.success.filter((s) => s.userId === userId).map(() => 'success'), ...r.errors.filter((e) => e.contact.userId === userId).map((e) => e.error)];
    });
  };

  it('dead-letters at once a row whose email another synced row holds, naming it; sends it by itself when that row lets go', async () => {
    const c = await start();
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (10, 'user10@example.com', 'Ten'), (11, 'user11@example.com', 'Eleven')`);
    await converged(c);

    // The source table does not enforce uniqueness: user 2006 gets user 10's email.
    await tdb.query(`INSERT INTO users (id, email, first_name) VALUES (2006, 'user10@example.com', 'Dup')`);
    const [letter] = await waitFor(async () => (await dead('2006')).length === 1 && dead('2006'), { message: 'user 2006 dead-lettered' });
    expect(letter).toMatchObject({
      error_code: 'IDENTIFIER_TAKEN',
      attempts: 1,
      blocked_key: '10',
      blocked_field: 'email',
      blocked_value: 'user10@example.com',
    });
    // The code says what happened and names the other row; Wooxy's own message is kept.
    expect(`${letter!.error_code}: ${letter!.human_error}`).toMatch(/^IDENTIFIER_TAKEN: email user10@example\.com is held by users\/10 \(Wooxy: ERR_CONTACT_EXISTS: A contact with email user10@example\.com already exists in list list-1\)$/);
    // At once: one add, refused, and no add ⇄ update ping-pong.
    expect(await answersAbout('2006')).toEqual(['ERR_CONTACT_EXISTS']);
    expect((await c.metrics.contactResults.get()).values.map((v) => v.labels.result)).not.toContain('ERR_CONTACT_NOT_EXISTS');
    expect(await open()).toBe(0);
    expect(contact('2006')).toBeUndefined();
    await waitFor(async () => (await gauge(c)).IDENTIFIER_TAKEN === 1, { message: 'the gauge counts it' });

    // A change of user 10 that keeps the email frees nothing: 2006 stays a dead letter and is not sent.
    await tdb.query(`UPDATE users SET first_name = 'Ten again' WHERE id = 10`);
    await waitFor(async () => contact('10')?.firstName === 'Ten again' && (await open()) === 0, { message: "user 10's change applied" });
    expect(await dead('2006')).toHaveLength(1);
    expect(await answersAbout('2006')).toEqual(['ERR_CONTACT_EXISTS']);

    // User 10 takes another email: once Wooxy confirms it, 2006 is sent by itself and its dead letter goes.
    await tdb.query(`UPDATE users SET email = 'ten@example.com' WHERE id = 10`);
    await waitFor(() => contact('2006')?.email === 'user10@example.com', { message: 'user 2006 arrives with the freed email' });
    await converged(c);
    expect(await dead()).toEqual([]);
    expect(await answersAbout('2006')).toEqual(['ERR_CONTACT_EXISTS', 'success']);
    await waitFor(async () => Object.keys(await gauge(c)).length === 0, { message: 'the gauge follows' });
  });

  it('dead-letters an update to an email another row holds (any case), keeps the contact as Wooxy has it, and sends it when the holder drops the email', async () => {
    const c = await start();
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (20, 'a@example.com', '+15555550020'), (21, 'b@example.com', '+15555550021')`);
    await converged(c);
    // Wooxy compares emails case-insensitively: "A@example.com" is user 20's mailbox.
    await tdb.query(`UPDATE users SET email = 'A@example.com', first_name = 'Bee' WHERE id = 21`);
    const [letter] = await waitFor(async () => (await dead('21')).length === 1 && dead('21'), { message: 'user 21 dead-lettered' });
    expect(letter).toMatchObject({ error_code: 'IDENTIFIER_TAKEN', attempts: 1, blocked_key: '20', blocked_field: 'email', blocked_value: 'A@example.com' });
    expect(letter!.human_error).toMatch(/^email A@example\.com is held by users\/20 \(Wooxy: ERR_CONTACT_DUPLICATION_ATTEMPT: email A@example\.com belongs to another contact/);
    const handle = createDb({ url: tdb.url, schema: 'wooxy_cdc' });
    try {
      // `dead-letters list --json` names the blocker too.
      expect(await listDeadLetters(storeContext(handle), { key: '21' })).toEqual([
        expect.objectContaining({ code: 'IDENTIFIER_TAKEN', blockedBy: { key: '20', field: 'email', value: 'A@example.com' } }),
      ]);
    } finally {
      await handle.close();
    }
    expect(await answersAbout('21')).toEqual(['success', 'ERR_CONTACT_DUPLICATION_ATTEMPT']);
    // Wooxy keeps user 21 as it was.
    expect(contact('21')).toMatchObject({ email: 'b@example.com' });
    expect(contact('21')?.firstName).not.toBe('Bee');

    // User 20 clears its email (a remove, then an add without it): user 21's update follows by itself.
    await tdb.query(`UPDATE users SET email = NULL WHERE id = 20`);
    await waitFor(() => contact('21')?.email === 'A@example.com', { message: 'user 21 updated with the freed email' });
    await converged(c);
    expect(contact('21')).toMatchObject({ firstName: 'Bee' });
    expect(await dead()).toEqual([]);
    await waitFor(async () => Object.keys(await gauge(c)).length === 0, { message: 'the gauge follows' });
  });

  it('a contact that syncs after all leaves the dead-letter table: a row fixed, a row fixed back to what Wooxy holds, a contact sent again', async () => {
    const c = await start({ maxAttempts: 2 });
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (31, 'u31@example.com', '+15555550031'), (36, 'u36@example.com', '+15555550036')`);
    await converged(c);

    // Row checks: 30 is invalid from the start, 31 becomes invalid (Wooxy keeps its last valid version).
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (30, 'u30@example.com', 'not-a-phone')`);
    await tdb.query(`UPDATE users SET phone = 'nope' WHERE id = 31`);
    await waitFor(async () => (await dead()).length === 2, { message: 'two ROW_INVALID dead letters' });
    expect((await dead()).map((d) => [d.source_key, d.error_code])).toEqual([
      ['30', 'ROW_INVALID'],
      ['31', 'ROW_INVALID'],
    ]);
    await waitFor(async () => (await gauge(c)).ROW_INVALID === 2, { message: 'the gauge counts them' });

    // 30 is fixed: it is sent, and once Wooxy confirms it its dead letter goes.
    await tdb.query(`UPDATE users SET phone = '+15555550030' WHERE id = 30`);
    await waitFor(async () => contact('30')?.phoneNumber === '+15555550030' && (await dead('30')).length === 0, { message: 'row 30 synced and its dead letter gone' });

    // 31 is fixed back to exactly what Wooxy holds: nothing is sent (delivery drops it as unchanged), and
    // the dead letter goes all the same.
    const sent = async () => (await c.metrics.contactsSent.get()).values.reduce((n, v) => n + v.value, 0);
    const before = await sent();
    await tdb.query(`UPDATE users SET phone = '+15555550031' WHERE id = 31`);
    await waitFor(async () => (await dead('31')).length === 0 && (await open()) === 0, { message: "row 31's dead letter gone" });
    expect(await sent()).toBe(before);

    // Spoilt and restored within one transaction: the row is valid when written, so no dead letter is left.
    await tdb.query(`BEGIN; UPDATE users SET phone = 'nope' WHERE id = 36; UPDATE users SET phone = '+15555550036' WHERE id = 36; COMMIT`);
    await tdb.query(`INSERT INTO users (id, email) VALUES (37, 'u37@example.com')`);
    await waitFor(() => contact('37'), { message: 'a later row arrives, so the transaction before it was written' });
    expect(await dead('36')).toEqual([]);

    // Wooxy fails 40 and 41 until their attempts run out (ERR_SYSTEM_ERROR), then works again.
    emulator.setFaults({ contactErrorRate: 1 });
    await tdb.query(`INSERT INTO users (id, email) VALUES (40, 'u40@example.com'), (41, 'u41@example.com')`);
    await waitFor(async () => (await dead()).filter((d) => d.error_code === 'ERR_SYSTEM_ERROR').length === 2, { message: 'two contacts dead-lettered by Wooxy' });
    emulator.setFaults({ contactErrorRate: 0 });
    await waitFor(async () => (await gauge(c)).ERR_SYSTEM_ERROR === 2, { message: 'the gauge counts them' });
    // 40 is sent again by its row's next change; 41 by the operator. Both arrive and leave the table.
    await tdb.query(`UPDATE users SET first_name = 'Forty' WHERE id = 40`);
    const handle = createDb({ url: tdb.url, schema: 'wooxy_cdc' });
    try {
      expect(await retryDeadLetters(storeContext(handle), { key: '41' })).toEqual({ retried: 1, queued: 1 });
    } finally {
      await handle.close();
    }
    await waitFor(() => contact('40')?.firstName === 'Forty' && contact('41'), { message: 'both sent again' });
    await converged(c);
    expect(await dead()).toEqual([]);
    await waitFor(async () => Object.keys(await gauge(c)).length === 0, { message: 'the gauge follows' });
  });

  it("Wooxy's confirmation of an older version leaves a newer ROW_INVALID in place: the row is invalid now", async () => {
    // Wooxy holds requests until told to process them, so the row can change while its call is in flight.
    await emulator.close();
    emulator = await createEmulator({ seed: 11, tokens: [TOKEN], lists: [{ id: LIST }], processing: { auto: false } });
    const c = await start();
    await tdb.query(`INSERT INTO users (id, email, phone) VALUES (50, 'u50@example.com', '+15555550050')`);
    await waitFor(async () => (await tdb.query(`SELECT 1 FROM wooxy_cdc.outbox WHERE source_key = '50' AND state = 'inflight'`)).rows.length === 1, { message: 'the add in flight' });
    await tdb.query(`UPDATE users SET phone = 'nope' WHERE id = 50`);
    await waitFor(async () => (await dead('50')).length === 1, { message: 'ROW_INVALID while the add is in flight' });
    await waitFor(async () => {
      emulator.processNow();
      return (await open()) === 0 && contact('50');
    }, { message: 'the add confirmed' });
    expect(await dead('50')).toEqual([expect.objectContaining({ error_code: 'ROW_INVALID' })]);
    await waitFor(async () => (await gauge(c)).ROW_INVALID === 1, { message: 'the gauge counts it' });

    await tdb.query(`UPDATE users SET phone = '+15555550051' WHERE id = 50`);
    await waitFor(async () => {
      emulator.processNow();
      return (await open()) === 0 && contact('50')?.phoneNumber === '+15555550051';
    }, { message: 'the fixed row confirmed' });
    expect(await dead()).toEqual([]);
    await waitFor(async () => Object.keys(await gauge(c)).length === 0, { message: 'the gauge follows' });
  });
});
