/**
 * Reads the vendor's reference pages (../shared/wooxy-api/*.txt) so the tests use the pages' own examples
 * and error lists rather than copies that could drift. Extraction is checked: a page whose layout changed
 * makes these helpers throw instead of silently yielding nothing.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../../src/wooxy/types.js';

const DIR = fileURLToPath(new URL('../../../shared/wooxy-api/', import.meta.url));

export const PAGE_FILES: Record<Endpoint, string> = {
  'contacts/add': 'contacts-add.txt',
  'contacts/update': 'contacts-update.txt',
  'contacts/remove': 'contacts-remove.txt',
  'request/find': 'request-find.txt',
};

export function pageText(endpoint: Endpoint): string {
  return readFileSync(DIR + PAGE_FILES[endpoint], 'utf8');
}

/** The first JSON object after `heading` on the page (the pages indent their examples under a heading line). */
function jsonAfter(text: string, heading: string): Record<string, unknown> {
  const at = text.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`no "${heading}" on the page`);
  const start = text.indexOf('{', at);
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return JSON.parse(text.slice(start, i + 1)) as Record<string, unknown>;
  }
  throw new Error(`unterminated JSON after "${heading}"`);
}

export function bodyExample(endpoint: Endpoint): Record<string, unknown> {
  return jsonAfter(pageText(endpoint), 'Body Example');
}

export function responseExample(endpoint: Endpoint): Record<string, unknown> {
  return jsonAfter(pageText(endpoint), 'Response');
}

/**
 * The "Method Errors" list, decoded the way a JSON decoder would read the messages: outer typographic quotes
 * dropped, `\”` → `"`, `\/` → `/`. The update page's `\”value\ “fields` is a rendering slip of the add page's
 * `\”value\” fields` and is read as such.
 */
export function documentedErrors(endpoint: Endpoint): string[] {
  const text = pageText(endpoint);
  const start = text.indexOf('\nError\n', text.indexOf('Method Errors'));
  const end = text.indexOf('Code Examples', start);
  if (start < 0 || end < 0) throw new Error(`no error list on the ${endpoint} page`);
  const lines = text
    .slice(start + 7, end)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.map((line) =>
    line
      .replace(/^[“"]/, '')
      .replace(/[”"]$/, '')
      .replace(/\\ “/g, '" ')
      .replace(/\\”/g, '"')
      .replace(/\\\//g, '/'),
  );
}

/** A documented message as a pattern: `{placeholder}` and PHP's `$variable` match any text. */
export function templatePattern(template: string): RegExp {
  const parts = template.split(/(\{[^}]+\}|\$[A-Za-z]+)/);
  const source = parts.map((p, i) => (i % 2 === 1 ? '.*' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`);
}
