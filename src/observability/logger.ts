import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Paths pino blanks before a line is written. Secrets are redacted here, in one place, not by hand at call
 * sites: the access token (as a header or a config value) and any connection string (its password).
 */
export const REDACT_PATHS = [
  'accessToken',
  '*.accessToken',
  '*.*.accessToken',
  'headers["access-token"]',
  '*.headers["access-token"]',
  'password',
  '*.password',
  '*.*.password',
  'url',
  '*.url',
  'stateUrl',
  '*.stateUrl',
  'connectionString',
  '*.connectionString',
  'webhookSecret',
  '*.webhookSecret',
];

export interface LoggerSettings {
  /** The level; default LOG_LEVEL from the environment, else info (the config loader applies LOG_LEVEL over log.level). */
  level?: string;
  /** Pretty output for humans; defaults to whether stdout is a terminal. */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

/**
 * A child logger carries fixed context (`slot`, `stage`); a call that passes the same key again would print it
 * twice in one line, which JSON readers resolve differently (jq keeps the last, some collectors reject the
 * line). The call's copy is dropped when it repeats the binding, and kept under `shadowed` when it differs,
 * so neither value is lost and every key appears once.
 */
function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false; // a bigint or a cycle: not what a binding (parsed from JSON) holds
  }
}

function dropRepeatedBindings(this: Logger, args: unknown[], method: (...a: unknown[]) => void): void {
  const first = args[0];
  if (first === null || typeof first !== 'object' || first instanceof Error || Array.isArray(first)) return method.apply(this, args);
  const bound = this.bindings();
  let fields: Record<string, unknown> | null = null;
  for (const key of Object.keys(first)) {
    if (!(key in bound)) continue;
    fields ??= { ...(first as Record<string, unknown>) };
    const value = fields[key];
    delete fields[key];
    if (!sameValue(value, bound[key])) {
      const shadowed = (fields.shadowed as Record<string, unknown> | undefined) ?? {};
      fields.shadowed = { ...shadowed, [key]: value };
    }
  }
  return method.apply(this, fields ? [fields, ...args.slice(1)] : args);
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { svc: 'wooxy-cdc' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: { logMethod: dropRepeatedBindings },
  };
  const pretty = settings.pretty ?? (process.stdout.isTTY === true && !settings.destination);
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  // Level names, not pino's numbers: a reader of the JSON (or a log query) should not need the table 30 = info.
  const json: LoggerOptions = { ...options, formatters: { level: (label) => ({ level: label }) } };
  return settings.destination ? pino(json, settings.destination) : pino(json);
}

/** Strips the password out of a postgres:// URL for display. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
