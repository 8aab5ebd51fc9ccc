import pg from 'pg';
import { CdcError } from '../errors.js';

/**
 * The slot is acknowledged once an outbox transaction has committed, so that commit must be on disk: a
 * server, database or role running with synchronous_commit = off reports commits it can still lose in a
 * crash, after the slot has moved past them. Every other level flushes locally and is kept.
 *
 * Returns the connection start-up options every session of the connector must use: none when the default
 * level is durable, `-c synchronous_commit=on` when it is off. A session that still cannot commit durably
 * with them (a pooler that drops start-up options, say) makes the connector refuse to start, naming the
 * setting: the "acknowledge after durable" rule must never silently fail.
 */
export async function durableSessionOptions(url: string, applicationName: string): Promise<string | undefined> {
  const level = await commitLevel(url, applicationName, undefined);
  if (level !== 'off') return undefined;
  const options = '-c synchronous_commit=on';
  let raised: string;
  try {
    raised = await commitLevel(url, applicationName, options);
  } catch (e) {
    throw refusal(`a session cannot be started with ${options} (${(e as Error).message})`, e);
  }
  if (raised === 'off') throw refusal(`synchronous_commit stays off even when a session asks for on`);
  return options;
}

async function commitLevel(url: string, applicationName: string, options: string | undefined): Promise<string> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName, ...(options ? { options } : {}) });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ level: string }>(`SELECT current_setting('synchronous_commit') AS level`);
    return rows[0]?.level ?? 'on';
  } finally {
    await client.end().catch(() => undefined);
  }
}

function refusal(why: string, cause?: unknown): CdcError {
  return new CdcError(
    'PG_DURABILITY',
    `the connector's sessions cannot commit durably: synchronous_commit is off for this server, database or role and ${why}. ` +
      `The slot is acknowledged after each outbox commit, so an asynchronous commit could lose changes in a crash. ` +
      `Run: ALTER ROLE <connector role> SET synchronous_commit = on (or connect without a pooler that drops start-up options).`,
    cause === undefined ? undefined : { cause },
  );
}
