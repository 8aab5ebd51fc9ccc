/**
 * The emulator's configuration: one zod schema for the YAML file the CLI reads and the object tests pass in,
 * resolved once at start-up. Defaults sit beside their fields; docs/emulator.md shows a full file.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CdcError, ErrorCodes } from '../errors.js';
import { ENDPOINTS, WooxyLimits } from '../wooxy/types.js';

const rate = z.number().min(0).max(1);

export const FAULT_KINDS = ['serverError', 'savingError', 'timeout', 'stall', 'rateLimit', 'badResponse', 'undocumented'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const AUTH_ERRORS = ['invalid', 'noMatches', 'notEnabled', 'noData', 'checkFailed'] as const;

/** Every fault is optional here so the same schema validates a patch sent to POST /_emulator/faults. */
export const faultsPatchSchema = z
  .object({
    /** Added before every API answer (ms), plus a uniform random extra up to latencyJitterMs. */
    latencyMs: z.number().int().min(0),
    latencyJitterMs: z.number().int().min(0),
    /** Fraction of API calls answered HTTP 500 "Internal server error". */
    serverErrorRate: rate,
    /** Fraction of valid add/update/remove calls answered HTTP 500 "Request saving error…" (nothing queued). */
    savingErrorRate: rate,
    /** Fraction of API calls held without an answer until the client gives up. */
    timeoutRate: rate,
    /**
     * Fraction of API calls Wooxy is slow on: held stallMs, then validated, accepted and answered as usual.
     * Unlike a timeout, a stalled call is still being worked on after its client gives up: it keeps counting
     * toward the concurrency limit until the stall ends, and an add/update/remove is then applied, late.
     */
    stallRate: rate,
    /** How long a stalled call is held (ms, wall time); set it past the client's timeout to make calls land late. */
    stallMs: z.number().int().min(0),
    /** Fraction of API calls rejected with HTTP 429 as if the concurrency limit were hit. */
    rateLimitRate: rate,
    /** Fraction of API calls answered HTTP 200 with a body that is not JSON. */
    badResponseRate: rate,
    /**
     * Fraction of API calls answered HTTP 200 `result:false` with a message no page lists ("Something unexpected
     * happened #n"); nothing is queued. A client must not mistake it for a rejection of the data.
     */
    undocumentedRate: rate,
    /** Sent as Retry-After (seconds) with every 429; null sends none (the vendor documents none). */
    retryAfterSeconds: z.number().min(0).nullable(),
    /** Fraction of accepted requests whose processing fails: every contact ERR_SYSTEM_ERROR, status fail. */
    processingFailureRate: rate,
    /** Fraction of contacts that fail with ERR_SYSTEM_ERROR in an otherwise normal request. */
    contactErrorRate: rate,
    /** Fraction of webhooks never sent (1 drops them all). */
    webhookDropRate: rate,
    /** Tokens revoked: answered "no matches found for access token {token}". */
    revokedTokens: z.array(z.string()),
    /** Answer every API call with this authorization failure; null for none. */
    authError: z.enum(AUTH_ERRORS).nullable(),
    /** Answer every failure with HTTP 200, to prove a client reads the body rather than the status. */
    okStatusForErrors: z.boolean(),
    /** Scripted faults, consumed one per matching API call before the rates are consulted. */
    next: z.array(
      z.object({
        kind: z.enum(FAULT_KINDS),
        endpoint: z.enum(ENDPOINTS).optional(),
        count: z.number().int().min(1).default(1),
      }),
    ),
  })
  .partial()
  .strict();

export type FaultsPatch = z.infer<typeof faultsPatchSchema>;
export type Faults = Required<FaultsPatch>;

export const DEFAULT_FAULTS: Faults = {
  latencyMs: 0,
  latencyJitterMs: 0,
  serverErrorRate: 0,
  savingErrorRate: 0,
  timeoutRate: 0,
  stallRate: 0,
  stallMs: 5_000,
  rateLimitRate: 0,
  badResponseRate: 0,
  undocumentedRate: 0,
  retryAfterSeconds: null,
  processingFailureRate: 0,
  contactErrorRate: 0,
  webhookDropRate: 0,
  revokedTokens: [],
  authError: null,
  okStatusForErrors: false,
  next: [],
};

const variableSchema = z.object({
  name: z.string().regex(/^[a-z][a-zA-Z]*$/, 'a variable name is latin lowerCamelCase without digits'),
  type: z.enum(['string', 'date']).default('string'),
});

export const listConfigSchema = z.object({
  id: z.string().min(1),
  variables: z.array(variableSchema).default([]),
});
export type ListConfig = z.infer<typeof listConfigSchema>;

const tokenSchema = z.union([
  z.string().min(1).transform((token) => ({ token, userId: '1', enabled: true })),
  z.object({
    token: z.string().min(1),
    /** The account id the vendor's messages name ("user {id} not enabled"). */
    userId: z.string().min(1).default('1'),
    /** A disabled user's token is answered "user {id} not enabled". */
    enabled: z.boolean().default(true),
  }),
]);

export const emulatorConfigSchema = z
  .object({
    /** Port for the CLI (0 = any free port); in-process callers pass it to createEmulator. */
    port: z.number().int().min(0).max(65535).default(0),
    /** Seeds every random choice (ids, faults, processing order); omitted = a random seed, reported in stats. */
    seed: z.number().int().optional(),
    /** The vendor's limit on concurrent requests per account; the next one is answered 429. */
    maxConcurrent: z.number().int().min(1).default(WooxyLimits.CONCURRENT_REQUESTS),
    tokens: z.array(tokenSchema).min(1),
    lists: z.array(listConfigSchema).default([]),
    /** Source ids that exist in the account (contacts' `sourceId` is looked up here). */
    sourceIds: z.array(z.string()).default([]),
    processing: z
      .object({
        /** An accepted request stays `new` this long (ms, emulator clock) before it is processed. */
        delayMs: z.number().int().min(0).default(20),
        /** Process the requests that are due together in a random order (the vendor promises no order). */
        randomOrder: z.boolean().default(false),
        /** false: requests wait for processNow() / POST /_emulator/process. */
        auto: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /** Request statuses older than this vanish from request/find. */
    retentionDays: z.number().min(0).default(WooxyLimits.RETENTION_DAYS),
    webhooks: z
      .object({
        maxAttempts: z.number().int().min(1).default(5),
        baseDelayMs: z.number().int().min(0).default(200),
        maxDelayMs: z.number().int().min(0).default(5_000),
        timeoutMs: z.number().int().min(1).default(5_000),
      })
      .strict()
      .prefault({}),
    faults: faultsPatchSchema.default({}),
    /** The request log keeps this many entries (oldest dropped first). */
    requestLogLimit: z.number().int().min(1).default(10_000),
    /** Larger bodies are answered "Bad Request". */
    maxBodyBytes: z.number().int().min(1).default(5 * 1024 * 1024),
  })
  .strict();

export type EmulatorConfigInput = z.input<typeof emulatorConfigSchema>;
export type EmulatorConfig = z.output<typeof emulatorConfigSchema>;

export function parseEmulatorConfig(input: unknown, source = 'emulator config'): EmulatorConfig {
  const parsed = emulatorConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new CdcError(ErrorCodes.CONFIG_INVALID, `${source} is invalid:\n${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

export async function loadEmulatorConfig(file: string): Promise<EmulatorConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CdcError(ErrorCodes.CONFIG_INVALID, `cannot read emulator config ${file}: ${(e as Error).message}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new CdcError(ErrorCodes.CONFIG_INVALID, `emulator config ${file} is not valid YAML: ${(e as Error).message}`, { cause: e });
  }
  return parseEmulatorConfig(doc, `emulator config ${file}`);
}

/** The documented default development token, used when WOOXY_ACCESS_TOKEN is not set. */
export const DEFAULT_DEV_TOKEN = 'dev-token';

/**
 * What `wooxy-cdc emulator` runs without --config: a demo list, the reference pages' own list, variable and
 * source id (so their examples pass), and the token from WOOXY_ACCESS_TOKEN or the default dev token.
 */
export function defaultEmulatorConfig(env: NodeJS.ProcessEnv = process.env): EmulatorConfig {
  return parseEmulatorConfig({
    tokens: [env.WOOXY_ACCESS_TOKEN && env.WOOXY_ACCESS_TOKEN !== '' ? env.WOOXY_ACCESS_TOKEN : DEFAULT_DEV_TOKEN],
    lists: [
      {
        id: 'demo-list',
        variables: [
          { name: 'plan', type: 'string' },
          { name: 'signupDate', type: 'date' },
          { name: 'newVariableName', type: 'string' },
        ],
      },
      { id: 'YOUR_CONTACT_LIST_ID', variables: [{ name: 'newVariableName', type: 'string' }] },
    ],
    sourceIds: ['Source_ID_from_Wooxy'],
  });
}
