/**
 * A local Wooxy API v3 that validates as the vendor documents: createEmulator() starts it on loopback and
 * returns a handle whose methods mirror the /_emulator/ control endpoints. docs/emulator.md describes it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';
import { ENDPOINTS, type Endpoint, type RequestStatus } from '../wooxy/types.js';
import { handleApi } from './api.js';
import { parseEmulatorConfig, type EmulatorConfig, type EmulatorConfigInput, type Faults, type FaultsPatch, type ListConfig } from './config.js';
import { CONTROL_PREFIX, handleControl } from './control.js';
import { EmulatorEngine } from './engine.js';
import { toStatus } from './requests.js';
import type { EmulatorStats, RequestLogEntry } from './stats.js';
import type { WebhookLogEntry } from './webhooks.js';

export { parseEmulatorConfig, loadEmulatorConfig, defaultEmulatorConfig, DEFAULT_DEV_TOKEN, DEFAULT_FAULTS } from './config.js';
export type { EmulatorConfig, EmulatorConfigInput, Faults, FaultsPatch, FaultKind, ListConfig } from './config.js';
export type { EmulatorStats, RequestLogEntry, Outcome } from './stats.js';
export type { OverlapStats, OverlapExample } from './overlaps.js';
export type { WebhookLogEntry } from './webhooks.js';
export { CONTROL_PREFIX } from './control.js';

export interface EmulatorOptions {
  /** Overrides config.port; 0 (the default) picks a free port. */
  port?: number;
  logger?: Logger;
}

export interface Emulator {
  /** Base URL including /v3: a WooxyClient's `baseUrl` is just this. */
  readonly url: string;
  /** Where the control endpoints live (`${origin}/_emulator`). */
  readonly controlUrl: string;
  readonly port: number;
  readonly config: EmulatorConfig;
  /** Stops listening, drops held requests and stops webhook deliveries. Safe to call twice. */
  close(): Promise<void>;

  /** A list's contacts as stored (undefined for an unknown list). */
  contacts(listId: string): Record<string, unknown>[] | undefined;
  /** The lists, their variables and how many contacts each holds. */
  lists(): { id: string; variables: { name: string; type: string }[]; contacts: number }[];
  /** Creates a list, or replaces its variables (contacts stay). */
  defineList(list: ListConfig): void;
  /** One request's status regardless of request/find (still subject to retention). */
  request(id: string): RequestStatus | undefined;
  requestLog(): RequestLogEntry[];
  webhookLog(): WebhookLogEntry[];
  stats(): EmulatorStats;
  faults(): Faults;
  setFaults(patch: FaultsPatch): Faults;
  advanceClock(ms: number): void;
  now(): number;
  /** Processes every pending request now, whatever its delay; returns how many. */
  processNow(): number;
  /** Resolves when nothing is due for processing and no webhook is in flight; rejects after timeoutMs. */
  idle(timeoutMs?: number): Promise<void>;
  /** Back to the configured state (contacts, requests, logs, stats, faults, clock). */
  reset(): void;
}

function endpointOf(pathname: string): Endpoint | undefined {
  const m = /^\/v3\/(.+?)\/?$/.exec(pathname);
  return m && (ENDPOINTS as readonly string[]).includes(m[1] ?? '') ? (m[1] as Endpoint) : undefined;
}

export async function createEmulator(input: EmulatorConfigInput | EmulatorConfig, options: EmulatorOptions = {}): Promise<Emulator> {
  const config = parseEmulatorConfig(input);
  const engine = new EmulatorEngine(config);
  const log = options.logger?.child({ component: 'wooxy-emulator' });

  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const pathname = path.split('?')[0] ?? '/';
    if (pathname === CONTROL_PREFIX || pathname.startsWith(`${CONTROL_PREFIX}/`)) return handleControl(engine, path, req, res);
    const endpoint = endpointOf(pathname);
    if (endpoint && req.method === 'POST') return handleApi(engine, endpoint, req, res);
    // The vendor documents only POSTs to the four endpoints; anything else is the emulator's 404/405.
    res.writeHead(endpoint ? 405 : 404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ result: false, errors: [endpoint ? 'Method Not Allowed' : 'Not Found'] }));
  };

  const server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      log?.error({ err: e }, 'emulator request failed');
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ result: false, errors: ['Internal server error'] }));
      }
    });
  });
  // Held requests ("timeouts") must not keep a closing emulator alive, and keep-alive sockets must not either.
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? config.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  log?.info({ port, seed: engine.seed }, 'Wooxy API emulator listening');

  let closing: Promise<void> | undefined;
  return {
    url: `${origin}/v3`,
    controlUrl: `${origin}${CONTROL_PREFIX}`,
    port,
    config,
    close() {
      closing ??= new Promise<void>((resolve) => {
        engine.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
    contacts: (listId) => engine.contacts(listId),
    lists: () => engine.lists(),
    defineList: (list) => engine.defineList(list),
    request: (id) => {
      engine.purge();
      const r = engine.book.get(id);
      return r ? toStatus(r) : undefined;
    },
    requestLog: () => [...engine.recorder.log],
    webhookLog: () => engine.webhooks.log.map((w) => ({ ...w })),
    stats: () => engine.stats(),
    faults: () => structuredClone(engine.faults),
    setFaults: (patch) => structuredClone(engine.setFaults(patch)),
    advanceClock: (ms) => engine.advanceClock(ms),
    now: () => engine.clock.now(),
    processNow: () => engine.processNow(),
    idle: (timeoutMs) => engine.idle(timeoutMs),
    reset: () => engine.reset(),
  };
}
