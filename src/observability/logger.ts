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
  'connectionString',
  '*.connectionString',
  'webhookSecret',
  '*.webhookSecret',
];

export interface LoggerSettings {
  level?: string;
  /** Pretty output for humans; defaults to whether stdout is a terminal. */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { svc: 'wooxy-cdc' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const pretty = settings.pretty ?? (process.stdout.isTTY === true && !settings.destination);
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return settings.destination ? pino(options, settings.destination) : pino(options);
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
