import { z } from 'zod';
import { didYouMean } from './suggest.js';
import { CONTACT_FIELDS, IDENTIFIER_FIELDS } from '../mapping/contact-fields.js';
import { columnName, countryCode, fieldSourceSchema, scalar, usesE164, variableSourceSchema, type FieldSource } from './sources.js';

export type { FieldSource, VariableSource } from './sources.js';

/**
 * The one definition of the configuration: it validates, supplies every default, and generates the README's
 * option table (`npm run docs:config`; a test fails when the table is stale). The key names of the
 * documented example are a public contract: add keys freely, rename none.
 */

const identifier = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** Values interpolated from ${ENV} arrive as strings: numbers and booleans accept their string forms. */
const numeric = (v: unknown) => (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v);
const boolish = (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v);
const int = (refine: (n: z.ZodNumber) => z.ZodNumber = (n) => n) =>
  z.preprocess(numeric, refine(z.number({ error: 'expected a number' }).int()));
const num = (refine: (n: z.ZodNumber) => z.ZodNumber = (n) => n) => z.preprocess(numeric, refine(z.number({ error: 'expected a number' })));
const bool = () => z.preprocess(boolish, z.boolean({ error: 'expected true or false' }));

/** `table`, `schema.table`, with SQL-style "quoted" parts where a name has dots, spaces or quotes. */
const NAME_PART = '(?:"(?:[^"]|"")+"|[^".\\s]+)';
const TABLE_NAME = new RegExp(`^${NAME_PART}(?:\\.${NAME_PART})?$`);

export function splitTableName(name: string): string[] {
  const parts: string[] = [];
  const re = new RegExp(NAME_PART, 'g');
  for (const m of name.matchAll(re)) parts.push(m[0].startsWith('"') ? m[0].slice(1, -1).replace(/""/g, '"') : m[0]);
  return parts;
}

const cacSchema = z.strictObject({
  value: fieldSourceSchema.describe('column (or constant) holding the positive acquisition cost'),
  currency: fieldSourceSchema.describe('column (or constant) holding EUR or USD'),
});

const fieldNames: string[] = [...Object.keys(CONTACT_FIELDS), 'cac'];

const fieldsSchema = z
  .record(z.string(), z.unknown())
  .superRefine((fields, ctx) => {
    for (const [name, source] of Object.entries(fields)) {
      if (!fieldNames.includes(name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `unknown Wooxy contact field${didYouMean(name, fieldNames)} (known: ${fieldNames.join(', ')})` });
        continue;
      }
      const parsed = (name === 'cac' ? cacSchema : fieldSourceSchema).safeParse(source);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [name, ...issue.path] });
      }
    }
    if (!IDENTIFIER_FIELDS.some((id) => id in fields)) {
      ctx.addIssue({ code: 'custom', message: `map at least one identifier: ${IDENTIFIER_FIELDS.join(', ')}` });
    }
  })
  .transform((fields) => {
    const out: Record<string, FieldSource | z.infer<typeof cacSchema>> = {};
    for (const [name, source] of Object.entries(fields)) {
      out[name] = (name === 'cac' ? cacSchema : fieldSourceSchema).parse(source);
    }
    return out;
  })
  .describe('Wooxy contact field → source column, {column, …}, {template, …} or {value}; cac takes {value, currency}, each a source')
  .meta({ shape: fieldSourceSchema.meta()?.shape, key: 'field' });

const conditionSchema = z
  .strictObject({
    column: columnName,
    equals: scalar.optional(),
    notEquals: scalar.optional(),
    in: z.array(scalar).optional(),
    notIn: z.array(scalar).optional(),
    isNull: z.boolean().optional(),
  })
  .refine((c) => ['equals', 'notEquals', 'in', 'notIn', 'isNull'].filter((k) => k in c).length === 1, {
    message: 'a condition takes exactly one of equals, notEquals, in, notIn, isNull',
  });
export type FilterCondition = z.infer<typeof conditionSchema>;

const variablesSchema = z
  .record(z.string(), z.unknown())
  .default({})
  .superRefine((variables, ctx) => {
    for (const [name, source] of Object.entries(variables)) {
      if (!/^[a-z][a-zA-Z]*$/.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'variable names are latin lowerCamelCase without digits' });
      const parsed = variableSourceSchema.safeParse(source);
      if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [name, ...issue.path] });
    }
  })
  .transform((variables) => Object.fromEntries(Object.entries(variables).map(([name, source]) => [name, variableSourceSchema.parse(source)])))
  .describe('list variable → source, as for fields (column, path, template, map, default, value …), with a type; the variables must exist on the Wooxy list')
  .meta({ shape: variableSourceSchema.meta()?.shape, key: 'variable' });

export const mappingSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/, { error: 'lowercase letters, digits and _' })
      .optional()
      .describe('stable name used in the outbox and CLI; default: the table name'),
    table: z
      .string({ error: 'expected a table name such as public.users' })
      .regex(TABLE_NAME, { error: 'expected schema.table or table ("quoted" where a name has dots, spaces or quotes)' })
      .describe('source table, schema-qualified (public. when omitted); quote names like SQL: public."Sign-ups"'),
    contactListId: z
      .preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string({ error: 'expected a Wooxy contact list id' }).min(1, { error: 'expected a Wooxy contact list id' }))
      .describe('Wooxy list the rows sync to'),
    key: columnName.default('id').describe('source primary key column'),
    fields: fieldsSchema,
    variables: variablesSchema,
    filter: z
      .array(conditionSchema)
      .default([])
      .describe('rows must match every condition to be in the list; a row that stops matching is removed'),
    upsert: bool().default(false).describe('default false; true sends updates with upsert:true instead of falling back to add'),
    defaultCountry: countryCode.optional().describe('the country of national phone numbers for every format: e164 field and variable of the mapping, e.g. DE'),
    guard: z
      .strictObject({
        removePercent: num((n) => n.min(0).max(100))
          .default(10)
          .describe("hold when the removals waiting are more than this percent of the mapping's synced contacts (and more than minRemovals); 0 disables the guard"),
        minRemovals: int((n) => n.min(0))
          .default(100)
          .describe('… and more than this many contacts; 0 disables the guard'),
      })
      .prefault({})
      .describe('mass-removal guard: removals beyond both limits are held (adds and updates go on) until `wooxy-cdc removals approve` or `discard`; a TRUNCATE removes every contact'),
  })
  .superRefine((m, ctx) => {
    const sources = [...Object.values(m.fields), ...Object.values(m.variables)];
    if (m.defaultCountry !== undefined && !sources.some(usesE164)) {
      ctx.addIssue({ code: 'custom', path: ['defaultCountry'], message: 'defaultCountry applies to fields with format: e164, and none has it (e.g. phoneNumber: {column: phone, format: e164})' });
    }
  })
  .transform((m) => {
    const parts = splitTableName(m.table);
    const [schema, table] = parts.length === 2 ? (parts as [string, string]) : ['public', parts[0]!];
    return { ...m, name: m.name ?? table.toLowerCase().replace(/[^a-z0-9_]/g, '_'), schema, tableName: table };
  });
export type MappingConfig = z.output<typeof mappingSchema>;

/** pino's levels; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const configSchema = z
  .strictObject({
    postgres: z
      .strictObject({
        url: z.string({ error: 'expected a postgres:// connection string' }).min(1).describe('connection string; use ${DATABASE_URL}'),
        stateUrl: z
          .string({ error: 'expected a postgres:// connection string' })
          .min(1)
          .optional()
          .describe(
            "where the connector keeps its own tables (outbox, contact state, requests, history, dead letters, snapshot progress) and its leader lock: another database or server; use ${WOOXY_STATE_URL}. Unset: in the source database",
          ),
        slot: z.string().regex(identifier).default('wooxy_cdc').describe('logical replication slot (pgoutput)'),
        publication: z.string().regex(identifier).default('wooxy_cdc').describe('publication of the mapped tables'),
        schema: z.string().regex(identifier).default('wooxy_cdc').describe("the connector's own tables"),
        autoCreate: bool().default(true).describe('create the slot and publication when missing; false: fail with the SQL to run'),
        publishColumns: z
          .enum(['mapped', 'all'])
          .default('mapped')
          .describe(
            'mapped: on PostgreSQL 15+ the publication lists only the columns the mappings read (key, fields, variables, filter) and the replica identity, so unmapped columns never leave the server; all: every column (lets migrations drop or retype a mapped column without touching the publication)',
          ),
        applicationName: z.string().default('wooxy-cdc').describe('application_name of every connection'),
        poolSize: int((n) => n.min(2).max(50)).default(5).describe('connections for the outbox, delivery and reconciliation'),
        heartbeatIntervalMs: int((n) => n.min(0))
          .default(10_000)
          .describe('how often a logical message is written so an idle publication still advances the slot (0: never)'),
        walWarnBytes: int((n) => n.min(0))
          .default(1_073_741_824)
          .describe("warn when the slot retains more WAL than this (pg_current_wal_lsn() − restart_lsn); 0: never"),
        monitorIntervalMs: int((n) => n.min(100)).default(5_000).describe('how often slot lag, retained WAL and outbox depth are sampled'),
      })
      .describe('source database'),
    wooxy: z
      .strictObject({
        baseUrl: z.url().default('https://api.wooxy.com/v3').describe('API base URL'),
        accessToken: z.string({ error: 'expected the API token; use ${WOOXY_ACCESS_TOKEN}' }).min(1).describe('API token; use ${WOOXY_ACCESS_TOKEN}'),
        maxInFlight: int((n) => n.min(1).max(10, { error: 'Wooxy allows at most 10 concurrent requests' })).default(10).describe('concurrent API calls, all endpoints together (vendor cap: 10)'),
        timeoutMs: int((n) => n.min(100)).default(15_000).describe('per-request timeout (add, update and remove answer "queued" at once; the work is asynchronous)'),
        timeoutGraceMs: int((n) => n.min(0))
          .default(30_000)
          .describe('after a call times out, how long Wooxy is assumed to still work on it: its limiter slot stays taken and its contacts wait, then their current state is sent again'),
        maxRetries: int((n) => n.min(0).max(20)).default(5).describe('retries of a transient failure within one call'),
      })
      .describe('Wooxy API'),
    capture: z
      .strictObject({
        flushChanges: int((n) => n.min(1)).default(5_000).describe('changes buffered before an outbox write (bounds memory in large transactions)'),
        flushIntervalMs: int((n) => n.min(1)).default(100).describe('longest a received change waits before its outbox write'),
      })
      .prefault({})
      .describe('replication → outbox'),
    snapshot: z
      .strictObject({
        onStart: bool().default(true).describe('at start, snapshot every mapping whose snapshot never finished (resuming one that stopped halfway), beside the stream'),
        chunkSize: int((n) => n.min(1).max(100_000)).default(5_000).describe('rows read and written per snapshot transaction (bounds memory)'),
        progressIntervalMs: int((n) => n.min(100)).default(10_000).describe('how often a running snapshot logs its progress'),
      })
      .prefault({})
      .describe('existing rows: initial snapshot and resync'),
    delivery: z
      .strictObject({
        batchSize: int((n) => n.min(1).max(100)).default(100).describe('contacts (or remove identifiers) per call; vendor cap: 100'),
        idleIntervalMs: int((n) => n.min(10)).default(250).describe('how often an idle sender looks for work'),
        maxAttempts: int((n) => n.min(1)).default(8).describe('attempts for a contact whose requests keep failing before it is dead-lettered'),
        pauseRetryMs: int((n) => n.min(10))
          .default(30_000)
          .describe("after an authorization or list error (unknown list, a variable missing from it), or pauseAfterFailures failed calls in a row, how often the mapping's delivery tries again"),
        pauseAfterFailures: int((n) => n.min(1))
          .default(5)
          .describe('transient failures in a row (5xx, timeouts, undocumented errors; backing off 1 s, 2 s, 4 s …) after which a mapping pauses'),
        drainTimeoutMs: int((n) => n.min(0))
          .default(10_000)
          .describe('at shutdown, how long calls in flight may take to be recorded before they are abandoned (they are re-sent)'),
      })
      .prefault({})
      .describe('outbox → Wooxy'),
    reconcile: z
      .strictObject({
        pollIntervalMs: int((n) => n.min(50)).default(2_000).describe('request/find polling interval when few requests are outstanding'),
        warnAfterHours: num((n) => n.min(1).max(168)).default(144).describe('warn when a request is unresolved this long (statuses vanish after 7 days)'),
        keepResolvedHours: num((n) => n.min(1))
          .default(168)
          .describe('resolved requests (done, fail, expired) are deleted this long after they resolved; 168 = the 7 days Wooxy keeps statuses'),
      })
      .prefault({})
      .describe('request/find and webhooks'),
    history: z
      .strictObject({
        keepDays: num((n) => n.min(0))
          .default(30)
          .describe(
            "how long each contact's request history (request ids, operations, Wooxy's answers) is kept for `wooxy-cdc inspect`, beyond Wooxy's 7 days; 0: none is written",
          ),
      })
      .prefault({})
      .describe('what inspect shows of past requests'),
    webhook: z
      .strictObject({
        publicUrl: z.url().optional().describe('externally reachable base URL of this HTTP server; enables webHookUri'),
        secret: z.string().min(24, { error: 'use at least 24 random characters' }).optional().describe('unguessable path secret; use ${WOOXY_WEBHOOK_SECRET}'),
      })
      .prefault({})
      .describe('vendor status callbacks'),
    ha: z
      .strictObject({
        pollIntervalMs: int((n) => n.min(100).max(60_000))
          .default(1_500)
          .describe("how often a standby tries to take the leader lock, and the leader checks its lock connection"),
      })
      .prefault({})
      .describe('high availability: instances elect one leader through a Postgres advisory lock'),
    http: z
      .strictObject({
        host: z.string().default('0.0.0.0').describe('bind address of /healthz, /readyz, /metrics and the webhook'),
        port: int((n) => n.min(0).max(65535)).default(9464).describe('0 disables the server'),
      })
      .prefault({})
      .describe('operations endpoints'),
    log: z
      .strictObject({
        level: z.enum(LOG_LEVELS).default('info').describe('pino level; LOG_LEVEL in the environment overrides it'),
      })
      .prefault({})
      .describe('logging'),
    mappings: z.array(mappingSchema).min(1, { error: 'add at least one mapping' }).describe('tables synced to Wooxy lists'),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.mappings.forEach((m, i) => {
      const prior = seen.get(m.name);
      if (prior !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['mappings', i, 'name'], message: `duplicate mapping name "${m.name}" (also mappings[${prior}]); set name: to tell them apart` });
      }
      seen.set(m.name, i);
    });
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
