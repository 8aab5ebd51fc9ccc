import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The Node flags the Dockerfile runs the connector with (its `ENV NODE_OPTIONS`), read from the Dockerfile so
 * the tests and the bench exercise exactly what production runs.
 */
export function productionNodeOptions(): string {
  const dockerfile = readFileSync(path.resolve(import.meta.dirname, '../../Dockerfile'), 'utf8');
  return /^ENV NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1] ?? '';
}
