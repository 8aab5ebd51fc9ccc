import type { Mapper, Row } from '../../src/mapping/mapper.js';
import type { Emulator } from '../../src/emulator/index.js';

/**
 * Differences between the emulator's list and the projection of the source rows through the mapping,
 * field by field; empty when they are equal. Contacts are matched by userId; a contact in the list that no
 * row projects to, or two contacts for one row, is a difference too.
 */
export function projectionDiff(rows: Row[], mapper: Mapper, emulator: Emulator): string[] {
  const diffs: string[] = [];
  const stored = emulator.contacts(mapper.listId) ?? [];
  const byUser = new Map<string, Record<string, unknown>[]>();
  for (const c of stored) {
    const list = byUser.get(String(c.userId)) ?? [];
    list.push(c);
    byUser.set(String(c.userId), list);
  }
  const expected = new Set<string>();
  for (const row of rows) {
    if (!mapper.matches(row)) continue;
    const p = mapper.project(row);
    if (!p.ok) continue; // dead-lettered at capture: not expected in the list
    const userId = String(p.contact.userId);
    expected.add(userId);
    const found = byUser.get(userId) ?? [];
    if (found.length !== 1) {
      diffs.push(`userId ${userId}: ${found.length} contacts in the list`);
      continue;
    }
    const c = found[0]!;
    for (const [field, value] of Object.entries(p.contact)) {
      if (field === 'variables') continue;
      const have = c[field];
      const same = typeof value === 'string' && typeof have === 'string' ? value.toLowerCase() === have.toLowerCase() : have === value || (value === '' && have == null);
      if (!same) diffs.push(`userId ${userId}.${field}: list has ${JSON.stringify(have)}, row says ${JSON.stringify(value)}`);
    }
  }
  for (const userId of byUser.keys()) if (!expected.has(userId)) diffs.push(`userId ${userId}: in the list but no row projects to it`);
  return diffs;
}
