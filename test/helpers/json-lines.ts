/**
 * JSON.parse keeps the last of two equal keys without a word, so a log line that carries a key twice looks
 * fine once parsed. This reads the raw text and names every key that appears twice in one object.
 */
export function duplicateKeys(json: string): string[] {
  const found: string[] = [];
  // One entry per open object (its keys so far) or array (null); `expectKey` where a key may come next.
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i]!;
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      if (j >= json.length) throw new Error(`unterminated string at ${i}`);
      const text = JSON.parse(json.slice(i, j + 1)) as string;
      const keys = stack.at(-1);
      if (expectKey && keys) {
        if (keys.has(text)) found.push(text);
        keys.add(text);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
      expectKey = false;
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack.at(-1) != null;
    }
  }
  return found;
}
