import { asText } from './converted.js';

/**
 * `{ template: "{first_name} {last_name}" }`: one value from several columns. `{column}` names a column (any
 * name, spaces and dots included); `{{` and `}}` are literal braces.
 *
 * Missing parts — NULL, empty or whitespace-only — drop out cleanly: each value is trimmed, and the text between
 * two placeholders is a separator written only between two values that are there (the one after the earlier
 * value), so "{first_name} {last_name}" never yields a double or stray space, "{last_name}, {first_name}" never
 * a dangling comma, and nothing yields "null". Text before the first placeholder and after the last is kept
 * while any value is there; when none is, the result is NULL and the field treats it as a NULL column.
 */
export type TemplatePart = { text: string } | { column: string };

export interface Template {
  readonly source: string;
  readonly parts: readonly TemplatePart[];
  readonly columns: readonly string[];
}

export function parseTemplate(source: string): Template | { error: string } {
  const parts: TemplatePart[] = [];
  let text = '';
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if ((ch === '{' || ch === '}') && source[i + 1] === ch) {
      text += ch;
      i++;
    } else if (ch === '}') {
      return { error: `unmatched } at position ${i + 1}; write }} for a literal brace` };
    } else if (ch === '{') {
      const end = source.indexOf('}', i + 1);
      const column = end < 0 ? '' : source.slice(i + 1, end);
      if (end < 0 || column.includes('{')) return { error: `unclosed { at position ${i + 1}; write {{ for a literal brace` };
      if (column === '') return { error: `empty placeholder {} at position ${i + 1}` };
      if (Buffer.byteLength(column) > 63) return { error: `{${column}} is not a column name: a Postgres column name has at most 63 bytes` };
      if (text) parts.push({ text });
      text = '';
      parts.push({ column });
      i = end;
    } else {
      text += ch;
    }
  }
  if (text) parts.push({ text });
  const columns = [...new Set(parts.flatMap((p) => ('column' in p ? [p.column] : [])))];
  if (columns.length === 0) return { error: 'a template needs at least one {column}; use {value: …} for a constant' };
  return { source, parts, columns };
}

/** The template over a row: the text, null when every part is missing, undefined when a part is unknown. */
export function renderTemplate(template: Template, row: Readonly<Record<string, unknown>>): string | null | undefined {
  const { parts } = template;
  const first = parts.findIndex((p) => 'column' in p);
  const last = parts.findLastIndex((p) => 'column' in p);
  let out = '';
  let any = false;
  let separator = ''; // the text after the last value written: it goes before the next value present
  let afterValue = false;
  for (let i = first; i <= last; i++) {
    const part = parts[i]!;
    if ('text' in part) {
      if (afterValue) separator = part.text;
      continue;
    }
    const raw = row[part.column];
    // An unchanged TOASTed column the stream did not resend: the whole value is unknown, not shorter.
    if (raw === undefined) return undefined;
    const value = raw === null ? '' : asText(raw).trim();
    afterValue = value !== '';
    if (!afterValue) continue;
    out += any ? separator + value : value;
    separator = '';
    any = true;
  }
  if (!any) return null;
  const text = (p: TemplatePart) => ('text' in p ? p.text : '');
  return (parts.slice(0, first).map(text).join('') + out + parts.slice(last + 1).map(text).join('')).trim();
}
