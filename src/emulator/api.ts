/**
 * The four vendor endpoints over HTTP. The pages document no status codes; the emulator answers 200 for
 * success, 400 for validation and malformed bodies, 401 for authorization, 404 for "No matches found", 429 for
 * the concurrency limit and 500 for service errors — and with `okStatusForErrors` every failure is a 200, as a
 * reminder that clients must read `result`.
 *
 * The order of checks: concurrency, latency, injected faults, token, body, validation, saving. A stalled call
 * (the `stall` fault) waits between the faults and the token check, then goes on as usual.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Messages, tooManyRequests } from '../wooxy/messages.js';
import { isPlainObject } from '../wooxy/rules.js';
import { removeRecordCount } from '../wooxy/validate-request.js';
import { unknownContactKeys } from '../wooxy/validate.js';
import type { Endpoint } from '../wooxy/types.js';
import type { EmulatorEngine } from './engine.js';
import type { Stall } from './stalls.js';
import type { Outcome, RequestLogEntry } from './stats.js';

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<{ text: string; tooLarge: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) tooLarge = true;
    else chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), tooLarge };
}

function countItems(endpoint: Endpoint, body: unknown): number {
  if (!isPlainObject(body)) return 0;
  if (endpoint === 'contacts/remove') return removeRecordCount(body);
  const list = endpoint === 'request/find' ? body.ids : body.contacts;
  return Array.isArray(list) ? list.length : 0;
}

export async function handleApi(engine: EmulatorEngine, endpoint: Endpoint, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const at = new Date(engine.clock.now()).toISOString();
  const isAsync = endpoint !== 'request/find';
  // add/update/remove failures carry a requestId, as the pages show.
  const requestId = isAsync ? engine.newId() : null;
  let count = 0;
  let answered = false;
  /** Set while Wooxy is slow on this call: it then outlives its client, and keeps counting toward the limit. */
  let stall: Stall | undefined;

  const extra: Pick<RequestLogEntry, 'ignoredKeys' | 'stalledMs' | 'verdict'> = {};
  const record = (httpStatus: number | null, outcome: Outcome, errors: string[] = [], id = requestId) =>
    engine.recorder.record({
      at,
      endpoint,
      httpStatus,
      outcome,
      contactCount: count,
      requestId: id,
      errors,
      ...extra,
      durationMs: Math.round(performance.now() - started),
    });

  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    engine.recorder.leave();
  };
  /** Every answer goes out here, once. */
  const send = (status: number, payload: object | string, outcome: Outcome, headers: Record<string, string> = {}) => {
    if (answered) return;
    const html = typeof payload === 'string';
    const errors = html ? [] : ((payload as { errors?: string[] }).errors ?? []);
    if (stall && (stall.clientGone || res.destroyed)) {
      // Wooxy finished a call its client had given up on: what it decided stands (an accepted request is
      // queued and will be applied), but nobody reads the answer.
      answered = true;
      leave();
      extra.verdict = outcome;
      record(null, 'stalled', errors, outcome === 'accepted' ? requestId : null);
      return;
    }
    if (res.destroyed) return; // 'close' records it
    answered = true;
    const httpStatus = status >= 400 && engine.faults.okStatusForErrors ? 200 : status;
    // Leave the concurrency count before the client can see the answer and send its next request.
    leave();
    res.writeHead(httpStatus, { 'Content-Type': html ? 'text/html' : 'application/json', ...headers });
    res.end(html ? payload : JSON.stringify(payload));
    record(httpStatus, outcome, errors);
  };
  const fail = (status: number, errors: string[], outcome: Outcome, headers?: Record<string, string>) =>
    send(status, requestId === null ? { result: false, errors } : { result: false, requestId, errors }, outcome, headers);
  const retryAfter = (): Record<string, string> =>
    engine.faults.retryAfterSeconds === null ? {} : { 'Retry-After': String(engine.faults.retryAfterSeconds) };

  if (!engine.recorder.enter(engine.config.maxConcurrent)) {
    left = true; // never entered the count
    return fail(429, [tooManyRequests(engine.config.maxConcurrent)], 'rateLimited', retryAfter());
  }
  res.once('close', () => {
    if (answered) return;
    // A stalled call is still being worked on: it counts, and is logged, when Wooxy is done with it.
    if (stall) {
      stall.clientGone = true;
      return;
    }
    // The client went away without an answer: it gave up (a held request, or latency past its timeout).
    answered = true;
    leave();
    record(null, 'timeout');
  });

  let text: string;
  let tooLarge: boolean;
  try {
    ({ text, tooLarge } = await readBody(req, engine.config.maxBodyBytes));
  } catch {
    return; // the client went away while sending; 'close' has recorded it
  }
  const latency = engine.latency();
  if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
  if (answered) return;

  /** Everything after the arrival faults, synchronous, so a stalled call runs it whole when the stall ends. */
  const respond = (): void => {
    const header = req.headers['access-token'];
    const authError = engine.authorize(Array.isArray(header) ? header[0] : header, endpoint);
    if (authError) return fail(401, [authError], 'unauthorized');

    if (tooLarge) return fail(413, [Messages.badRequest], 'badRequest');
    if (!(req.headers['content-type'] ?? '').toLowerCase().includes('application/json')) return fail(400, [Messages.badRequest], 'badRequest');
    let body: unknown;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      return fail(400, [Messages.badRequest], 'badRequest');
    }
    count = countItems(endpoint, body);

    const errors = engine.validate(endpoint, body);
    if (errors.length > 0) return fail(400, errors, errors.length === 1 && errors[0] === Messages.badRequest ? 'badRequest' : 'validation');

    if (!isAsync) {
      const requests = engine.find((body as { ids: string[] }).ids);
      if (Object.keys(requests).length === 0) return fail(404, [Messages.noMatches], 'noMatches');
      return send(200, { result: true, requests, errors: [] }, 'found');
    }
    if (engine.savingFault(endpoint)) return fail(500, [Messages.savingError], 'savingError');
    const contacts = (body as { contacts?: Record<string, unknown>[] }).contacts ?? [];
    const ignoredKeys = [...new Set(contacts.flatMap(unknownContactKeys))];
    if (ignoredKeys.length > 0) extra.ignoredKeys = ignoredKeys;
    engine.accept(endpoint, requestId as string, body as Record<string, unknown>);
    // The remove page's success reply has no `errors`; add's and update's have an empty one.
    return send(200, endpoint === 'contacts/remove' ? { result: true, requestId } : { result: true, requestId, errors: [] }, 'accepted');
  };

  switch (engine.arrivalFault(endpoint)) {
    case 'timeout':
      return; // held: no answer until the client gives up (or the emulator closes), never processed
    case 'stall': {
      extra.stalledMs = engine.faults.stallMs;
      stall = engine.stalls.hold(extra.stalledMs, () => {
        // reset() or close(): the call is dropped unlogged, so nothing of it reaches the fresh state.
        answered = true;
        leave();
        res.destroy();
      });
      if (!(await stall.elapsed)) return;
      try {
        return respond();
      } finally {
        stall.end();
      }
    }
    case 'rateLimit':
      return fail(429, [tooManyRequests(engine.config.maxConcurrent)], 'rateLimited', retryAfter());
    case 'serverError':
      return fail(500, [Messages.internal], 'serverError');
    case 'badResponse':
      return send(200, '<html><body><h1>502 Bad Gateway</h1></body></html>', 'badResponse');
    case 'undocumented':
      // Well-formed, result:false, a 200, and a message no page lists: neither a validation verdict nor a
      // documented service error. Decided on arrival, so it says nothing about the body.
      return fail(200, [engine.undocumentedError()], 'undocumented');
    case undefined:
      return respond();
  }
}
