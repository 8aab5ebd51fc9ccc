import { createEmulator, type Emulator, type FaultsPatch } from '../../src/emulator/index.js';

export const BENCH_TOKEN = 'bench-token-0123456789abcdef';
export const LIST_ID = 'bench';

/** The emulator every scenario talks to, in the bench process; the connector runs as its own process. */
export async function startBenchEmulator(faults: FaultsPatch = {}, requestLogLimit = 200_000): Promise<Emulator> {
  return createEmulator({
    seed: 8,
    tokens: [BENCH_TOKEN],
    lists: [{ id: LIST_ID, variables: [] }, { id: 'naive', variables: [] }],
    processing: { delayMs: 20 },
    requestLogLimit,
    faults,
  });
}

export interface Acceptance {
  /** Emulator clock (ms) when the answer was sent: arrival plus the request's duration. */
  at: number;
  arrivedAt: number;
  contacts: number;
  requestId: string;
  endpoint: string;
}

/** Accepted add/update/remove calls from the request log, oldest first. */
export function acceptances(emulator: Emulator, sinceSeq = 0): Acceptance[] {
  return emulator
    .requestLog()
    .filter((e) => e.seq > sinceSeq && e.outcome === 'accepted' && e.requestId)
    .map((e) => {
      const arrivedAt = Date.parse(e.at);
      return { at: arrivedAt + e.durationMs, arrivedAt, contacts: e.contactCount, requestId: e.requestId!, endpoint: e.endpoint };
    });
}

/** Calls (all endpoints, all outcomes) and contacts in accepted contact calls since `sinceSeq`. */
export function callCounts(emulator: Emulator, sinceSeq = 0): { calls: number; contactCalls: number; finds: number; contacts: number; rejected: number } {
  let calls = 0;
  let contactCalls = 0;
  let finds = 0;
  let contacts = 0;
  let rejected = 0;
  for (const e of emulator.requestLog()) {
    if (e.seq <= sinceSeq) continue;
    calls++;
    if (e.endpoint === 'request/find') finds++;
    else {
      contactCalls++;
      if (e.outcome === 'accepted') contacts += e.contactCount;
      else rejected++;
    }
  }
  return { calls, contactCalls, finds, contacts, rejected };
}

export function lastSeq(emulator: Emulator): number {
  const log = emulator.requestLog();
  return log.length > 0 ? log[log.length - 1]!.seq : 0;
}
