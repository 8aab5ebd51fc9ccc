import type { ContactPayload, Mapper, Row } from '../mapping/mapper.js';

export type Desired = { ok: true; desired: ContactPayload | null } | { ok: false; message: string };

/**
 * The contact a row implies for its mapping: null when the row is gone or does not match the mapping's
 * filter (the contact must not be in the list), the payload when it is valid, the vendor's problems when not.
 * One definition for stream changes and snapshot rows alike.
 */
export function desiredOf(mapper: Mapper, row: Row | null): Desired {
  if (!row || !mapper.matches(row)) return { ok: true, desired: null };
  const projection = mapper.project(row);
  return projection.ok ? { ok: true, desired: projection.contact } : { ok: false, message: projection.problems.join('; ') };
}
