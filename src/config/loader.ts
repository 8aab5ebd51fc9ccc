import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { didYouMean, optionsAt } from './suggest.js';
import { CdcError } from '../errors.js';
import { configSchema, LOG_LEVELS, type Config } from './schema.js';

/**
 * Loads a YAML config: `${VAR}` and `${VAR:-default}` are replaced from the environment in string values
 * (after YAML parsing, so an environment value can never change the document's structure), then the schema
 * validates and fills defaults. Every problem is reported at once, one line each, named by its path:
 *   mappings[0].fields.email: expected a column name
 */
export type Env = Record<string, string | undefined>;

export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends CdcError {
  constructor(
    readonly problems: ConfigProblem[],
    readonly file?: string,
  ) {
    super('CONFIG_INVALID', formatProblems(problems, file));
    this.name = 'ConfigError';
  }
}

export function formatProblems(problems: ConfigProblem[], file?: string): string {
  const head = `Invalid configuration${file ? ` in ${file}` : ''} (${problems.length} problem${problems.length === 1 ? '' : 's'}):`;
  return [head, ...problems.map((p) => `  ${p.path || '(root)'}: ${p.message}`)].join('\n');
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces references in every string of a parsed document; missing variables become problems. */
export function interpolate(value: unknown, env: Env, problems: ConfigProblem[], path: PropertyKey[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(REF, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      const v = env[name!];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push({ path: formatPath(path), message: `environment variable ${name} is not set` });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, [...path, i]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, problems, [...path, k])]));
  }
  return value;
}

function issuesToProblems(issues: z.core.$ZodIssue[]): ConfigProblem[] {
  return issues.map((issue) => {
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      const options = optionsAt(configSchema, issue.path);
      message = `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"${didYouMean(k, options)}`).join(', ')}`;
    }
    else if (issue.code === 'invalid_type' && /received undefined/.test(message)) message = 'required';
    else message = message.replace(/^Invalid input: /, '');
    return { path: formatPath(issue.path) || '(root)', message };
  });
}

export interface LoadOptions {
  /**
   * The command never calls Wooxy (status, dead-letters, migrate, snapshot, resync): the access token may be
   * missing from its environment. Operators run these where the token is not, and need not be, available.
   */
  withoutWooxy?: boolean;
}

/** What stands in for an access token a command that never calls Wooxy was not given. */
export const TOKEN_NOT_NEEDED = '(not needed by this command)';

/**
 * LOG_LEVEL in the environment wins over the file's log.level: turning on debug for one run (or one pod)
 * should not mean editing a configuration that is shared, mounted read-only, or in a ConfigMap.
 */
function applyLogLevel(doc: unknown, env: Env, problems: ConfigProblem[]): void {
  const level = env.LOG_LEVEL;
  if (level === undefined || level === '') return;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    problems.push({ path: 'LOG_LEVEL', message: `expected one of ${LOG_LEVELS.join(', ')}; got "${level}"` });
    return;
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return;
  const root = doc as Record<string, unknown>;
  const log = root.log;
  if (log === undefined) root.log = { level };
  else if (log && typeof log === 'object' && !Array.isArray(log)) root.log = { ...(log as Record<string, unknown>), level };
}

/** Validates an already-parsed document (what tests and embedders use). */
export function parseConfig(raw: unknown, env: Env = process.env, file?: string, options: LoadOptions = {}): Config {
  let problems: ConfigProblem[] = [];
  const interpolated = interpolate(raw ?? {}, env, problems);
  if (options.withoutWooxy) {
    const wooxy = (interpolated as { wooxy?: Record<string, unknown> } | null)?.wooxy;
    if (wooxy && typeof wooxy === 'object' && (problems.some((p) => p.path === 'wooxy.accessToken') || wooxy.accessToken === undefined)) {
      wooxy.accessToken = TOKEN_NOT_NEEDED;
      problems = problems.filter((p) => p.path !== 'wooxy.accessToken');
    }
  }
  // A section left with only comments in it parses as null: treat it as empty, so its defaults apply.
  if (interpolated && typeof interpolated === 'object' && !Array.isArray(interpolated)) {
    for (const [k, v] of Object.entries(interpolated)) if (v === null) (interpolated as Record<string, unknown>)[k] = {};
  }
  applyLogLevel(interpolated, env, problems);
  const result = configSchema.safeParse(interpolated);
  // A missing variable also fails its field's validation; report the cause, not both.
  const missing = new Set(problems.map((p) => p.path));
  if (!result.success) problems.push(...issuesToProblems(result.error.issues).filter((p) => !missing.has(p.path)));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems, file);
  return result.data;
}

export function parseConfigText(text: string, env: Env = process.env, file?: string, options: LoadOptions = {}): Config {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? '?'}`, message: e.message.split('\n')[0] ?? e.message })),
      file,
    );
  }
  return parseConfig(doc.toJS(), env, file, options);
}

export async function loadConfig(file: string, env: Env = process.env, options: LoadOptions = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${file}: ${(e as Error).message}` }], file);
  }
  return parseConfigText(text, env, file, options);
}
