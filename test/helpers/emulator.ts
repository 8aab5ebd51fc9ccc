/** Starting an emulator configured like the reference pages, raw HTTP calls to it, and a webhook receiver. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEmulator, type Emulator, type EmulatorConfigInput } from '../../src/emulator/index.js';
import type { Endpoint, RequestStatus } from '../../src/wooxy/types.js';

/** Long enough to be unmistakable when searched for in messages and logs. */
export const TOKEN = 'tok-7f3a9c2e51b84d06a1e9';
export const DISABLED_TOKEN = 'tok-disabled-user-0042';
export const DISABLED_USER = '42';
/** The pages' own placeholders: their examples only pass against a list, variable and source id of these names. */
export const LIST_ID = 'YOUR_CONTACT_LIST_ID';

export function pagesConfig(overrides: Partial<EmulatorConfigInput> = {}): EmulatorConfigInput {
  return {
    seed: 1234,
    tokens: [TOKEN, { token: DISABLED_TOKEN, userId: DISABLED_USER, enabled: false }],
    lists: [
      {
        id: LIST_ID,
        variables: [
          { name: 'newVariableName', type: 'string' },
          { name: 'signupDate', type: 'date' },
        ],
      },
    ],
    sourceIds: ['Source_ID_from_Wooxy'],
    processing: { delayMs: 0 },
    webhooks: { baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2_000 },
    ...overrides,
  };
}

export function startEmulator(overrides: Partial<EmulatorConfigInput> = {}): Promise<Emulator> {
  return createEmulator(pagesConfig(overrides));
}

export interface RawAnswer {
  status: number;
  json: { result?: boolean; requestId?: string; errors?: string[]; requests?: Record<string, unknown> } & Record<string, unknown>;
  headers: Headers;
}

export interface PostOptions {
  /** undefined sends no Access-Token header at all. */
  token?: string | undefined;
  /** Sent as is instead of JSON.stringify(body). */
  raw?: string;
  contentType?: string;
}

export async function post(emulator: Emulator, endpoint: Endpoint, body: unknown, options: PostOptions = { token: TOKEN }): Promise<RawAnswer> {
  const headers: Record<string, string> = { 'Content-Type': options.contentType ?? 'application/json' };
  if (options.token !== undefined) headers['Access-Token'] = options.token;
  const res = await fetch(`${emulator.url}/${endpoint}`, { method: 'POST', headers, body: options.raw ?? JSON.stringify(body) });
  const text = await res.text();
  let json: RawAnswer['json'];
  try {
    json = JSON.parse(text) as RawAnswer['json'];
  } catch {
    json = { unparsed: text };
  }
  return { status: res.status, json, headers: res.headers };
}

export async function control<T = Record<string, unknown>>(emulator: Emulator, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${emulator.controlUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as T };
}

export interface Receiver {
  url: string;
  received: { body: RequestStatus; headers: Record<string, string | string[] | undefined> }[];
  /** Answers 500 to this many deliveries before accepting. */
  failFirst: number;
  attempts: number;
  close(): Promise<void>;
}

/** A webhook receiver on loopback. */
export async function startReceiver(failFirst = 0): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    received: [],
    failFirst,
    attempts: 0,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.attempts++;
      if (receiver.attempts <= receiver.failFirst) {
        res.writeHead(500).end();
        return;
      }
      receiver.received.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as RequestStatus, headers: req.headers });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/wooxy-hook`;
  return receiver;
}
