/**
 * The vendor's reference pages as the tests use them: each page's body and response examples and its
 * documented error messages, from test/fixtures/wooxy-pages.ts (extracted verbatim from the pages once, so
 * the suite needs nothing outside the repository).
 */
import type { Endpoint } from '../../src/wooxy/types.js';
import { WOOXY_PAGES } from '../fixtures/wooxy-pages.js';

/** A deep copy: a test that edits an example must not change it for the next one. */
const copy = <T>(v: T): T => structuredClone(v);

export function bodyExample(endpoint: Endpoint): Record<string, unknown> {
  return copy(WOOXY_PAGES[endpoint].body);
}

export function responseExample(endpoint: Endpoint): Record<string, unknown> {
  return copy(WOOXY_PAGES[endpoint].response);
}

/**
 * The "Method Errors" list, decoded the way a JSON decoder would read the messages: outer typographic quotes
 * dropped, `\”` → `"`, `\/` → `/`. The update page's `\”value\ “fields` is a rendering slip of the add page's
 * `\”value\” fields` and is read as such.
 */
export function documentedErrors(endpoint: Endpoint): string[] {
  return WOOXY_PAGES[endpoint].errors.map((line) =>
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
