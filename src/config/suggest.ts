import { z } from 'zod';

/** Edit distance (insertions, deletions, substitutions), case-insensitive. */
export function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length]!;
}

/** The candidate a typo most likely meant, when one is close enough to be worth saying. */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best !== null && best !== word && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

export const didYouMean = (word: string, candidates: readonly string[]): string => {
  const c = closest(word, candidates);
  return c ? ` (did you mean "${c}"?)` : '';
};

interface JsonSchema {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
}

let known: Map<string, string[]> | null = null;

/** Every object's option names in a schema, by path with list items as `[]` (`mappings[]`, `postgres`). */
export function optionNames(schema: z.ZodType): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (s: JsonSchema, path: string) => {
    for (const branch of [...(s.anyOf ?? []), ...(s.allOf ?? [])]) walk(branch, path);
    if (s.properties) {
      out.set(path, [...new Set([...(out.get(path) ?? []), ...Object.keys(s.properties)])]);
      for (const [k, child] of Object.entries(s.properties)) walk(child, path ? `${path}.${k}` : k);
    }
    if (s.items) walk(s.items, `${path}[]`);
  };
  walk(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema, '');
  return out;
}

/** The options known at an issue's path (numbers are list items), for "did you mean". */
export function optionsAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  known ??= optionNames(schema);
  const key = path.reduce<string>((p, seg) => (typeof seg === 'number' ? `${p}[]` : p ? `${p}.${String(seg)}` : String(seg)), '');
  return known.get(key) ?? [];
}
