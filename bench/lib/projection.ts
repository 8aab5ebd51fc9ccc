import { parseConfig } from '../../src/config/loader.js';
import type { Emulator } from '../../src/emulator/index.js';
import { compileMapping, type Row } from '../../src/mapping/mapper.js';
import { projectionDiff } from '../../test/helpers/converge.js';
import type { BenchDb } from './pg.js';
import { USERS_MAPPING } from './pg.js';

/** Differences between the emulator's list and the table projected through the bench's mapping (empty: equal). */
export async function listDiff(db: BenchDb, emulator: Emulator): Promise<string[]> {
  const config = parseConfig({ postgres: { url: db.url }, wooxy: { accessToken: 'x' }, mappings: [USERS_MAPPING] }, {});
  const mapper = compileMapping(config.mappings[0]!);
  const { rows } = await db.query<Row>('SELECT id, email, first_name, last_name, plan FROM users');
  return projectionDiff(rows, mapper, emulator);
}
