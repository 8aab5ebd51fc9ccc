/**
 * The demo's table and scripted workload: a `users` table with a realistic mix of rows (some without a phone,
 * some soft-deleted, several languages and plans), then the changes a product database sees — sign-ups, plan
 * changes, repeated edits of one row, an email change, a cleared phone number, hard and soft deletes, and one
 * row with an unusable phone number that must end as a dead letter while everything else flows. Phone numbers
 * are national, as forms collect them; the mapping makes them E.164.
 */
import type pg from 'pg';

export const USERS_DDL = `CREATE TABLE users (
  id bigint PRIMARY KEY,
  email text,
  phone text,
  first_name text,
  last_name text,
  language text,
  plan text NOT NULL DEFAULT 'free',
  signup_date date NOT NULL DEFAULT current_date,
  newsletter boolean NOT NULL DEFAULT false,
  deleted_at timestamptz
)`;

const FIRST = ['Ada', 'Grace', 'Linus', 'Margaret', 'Alan', 'Barbara', 'Dennis', 'Frances', 'Ken', 'Radia', 'Edsger', 'Karen', 'Tim', 'Hedy', 'Niklaus', 'Sophie'];
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Turing', 'Liskov', 'Ritchie', 'Allen', 'Thompson', 'Perlman', 'Dijkstra', 'Spärck Jones', 'Berners-Lee', 'Lamarr', 'Wirth', 'Wilson'];
const LANGUAGES = ['en', 'en', 'de', 'fr', 'es', 'et'];
const PLANS = ['free', 'free', 'free', 'pro', 'team'];

/** The emulator's seeded generator (mulberry32), so every run of the demo is the same story. */
export { seededRandom as random } from '../emulator/clock.js';

export interface UserRow {
  id: number;
  email: string | null;
  phone: string | null;
  first_name: string;
  last_name: string;
  language: string | null;
  plan: string;
  signup_date: string;
  newsletter: boolean;
  deleted_at: string | null;
}

/**
 * A German mobile number the way a sign-up form collects it: national, in one of the spellings people type.
 * The mapping's `format: e164` with `defaultCountry: DE` turns each into +49151… for Wooxy.
 */
function nationalPhone(id: number): string {
  const digits = String(10_000_000 + id * 7919).slice(-8);
  const [a, b] = [digits.slice(0, 4), digits.slice(4)];
  return [`0151 ${a}${b}`, `(0151) ${a}-${b}`, `+49 151 ${a} ${b}`, `0151/${a}${b}`][id % 4]!;
}

export function makeUser(id: number, rnd: () => number): UserRow {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const first = pick(FIRST);
  const last = pick(LAST);
  const day = new Date(Date.UTC(2023, 0, 1) + Math.floor(rnd() * 700) * 86_400_000).toISOString().slice(0, 10);
  return {
    id,
    email: rnd() < 0.95 ? `${first}.${last.replace(/[^A-Za-z]/g, '')}${id}@example.com`.toLowerCase() : null,
    phone: rnd() < 0.6 ? nationalPhone(id) : null,
    first_name: first,
    last_name: last,
    language: rnd() < 0.9 ? pick(LANGUAGES) : null,
    plan: pick(PLANS),
    signup_date: day,
    newsletter: rnd() < 0.4,
    deleted_at: rnd() < 0.04 ? '2024-06-01T00:00:00Z' : null,
  };
}

export async function insertUsers(db: pg.ClientBase, users: readonly UserRow[]): Promise<void> {
  await db.query(
    `INSERT INTO users (id, email, phone, first_name, last_name, language, plan, signup_date, newsletter, deleted_at)
     SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, email text, phone text, first_name text, last_name text,
       language text, plan text, signup_date date, newsletter boolean, deleted_at timestamptz)`,
    [JSON.stringify(users)],
  );
}

export interface Step {
  title: string;
  /** Applies the step; may name what it touched. */
  run: (db: pg.ClientBase) => Promise<string | void>;
}

/** A mobile number typed with a few digits too many: no numbering plan has a number that long. */
export const UNUSABLE_PHONE = '0151 1234 5678 9012 3';

/** The scripted changes after the initial rows (ids 1..initial). The unusable phone is user `initial + 1001`. */
export function script(initial: number, rnd: () => number): Step[] {
  const invalidId = initial + 1001;
  return [
    {
      title: 'Sign-ups: 25 new users in one transaction',
      run: (db) => insertUsers(db, Array.from({ length: 25 }, (_, i) => makeUser(initial + 1 + i, rnd))),
    },
    {
      title: 'Plan changes: every 10th user moves to "pro"',
      run: async (db) => void (await db.query(`UPDATE users SET plan = 'pro' WHERE id % 10 = 0 AND plan <> 'pro'`)),
    },
    {
      title: 'One user edits a profile 20 times (coalesced into one Wooxy update)',
      run: async (db) => {
        for (let i = 1; i <= 20; i++) await db.query(`UPDATE users SET first_name = $1 WHERE id = 3`, [`Grace v${i}`]);
      },
    },
    {
      title: 'Email change: a user gets a new address (the update finds the contact by userId)',
      run: async (db) => {
        const { rows } = await db.query<{ id: string }>(
          `UPDATE users SET email = 'new.address.' || id || '@example.org'
           WHERE id = (SELECT min(id) FROM users WHERE email IS NOT NULL AND deleted_at IS NULL AND id > 5) RETURNING id`,
        );
        return `user ${rows[0]?.id}`;
      },
    },
    {
      title: 'Phone cleared: two users remove their phone number (an identifier: removed, then added again)',
      run: async (db) => {
        const { rows } = await db.query<{ id: string }>(
          `UPDATE users SET phone = NULL
           WHERE id IN (SELECT id FROM users WHERE phone IS NOT NULL AND email IS NOT NULL AND deleted_at IS NULL AND id > 10 ORDER BY id LIMIT 2) RETURNING id`,
        );
        return `users ${rows.map((r) => r.id).join(' and ')}`;
      },
    },
    {
      title: 'Deletes: 5 users close their accounts; 3 are soft-deleted (they leave the list through the filter)',
      run: async (db) => {
        await db.query(`DELETE FROM users WHERE id IN (21, 22, 23, 24, 25)`);
        await db.query(`UPDATE users SET deleted_at = now() WHERE id IN (31, 32, 33)`);
      },
    },
    {
      title: `An unusable phone number: user ${invalidId} signs up with "${UNUSABLE_PHONE}" (too long for any German number; becomes a dead letter)`,
      run: async (db) => {
        const u = makeUser(invalidId, rnd);
        await insertUsers(db, [{ ...u, phone: UNUSABLE_PHONE, deleted_at: null }]);
      },
    },
    {
      title: 'Newsletter opt-ins and a language change, in one transaction with more sign-ups',
      run: async (db) => {
        await db.query('BEGIN');
        await db.query(`UPDATE users SET newsletter = true WHERE id % 7 = 0`);
        await db.query(`UPDATE users SET language = 'de' WHERE id = 40`);
        await insertUsers(db, Array.from({ length: 10 }, (_, i) => makeUser(initial + 100 + i, rnd)));
        await db.query('COMMIT');
      },
    },
  ];
}
