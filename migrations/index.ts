import type { Migration } from 'kysely';
import { initial } from './0001_initial.js';
import { delivery } from './0002_delivery.js';
import { snapshot } from './0003_snapshot.js';
import { fillfactor } from './0004_fillfactor.js';
import { integrity } from './0005_integrity.js';
import { lifecycle } from './0006_lifecycle.js';
import { removalGuard } from './0007_removal_guard.js';
import { deadLetters } from './0008_dead_letters.js';
import { history } from './0009_history.js';
import { mappingColumns } from './0011_mapping_columns.js';

/**
 * Numbered and append-only: a released migration is never edited, a change is a new file. Each is a factory
 * of the schema name, because the connector's schema is configurable.
 */
export const MIGRATIONS: ReadonlyArray<readonly [name: string, factory: (schema: string) => Migration]> = [
  ['0001_initial', initial],
  ['0002_delivery', delivery],
  ['0003_snapshot', snapshot],
  ['0004_fillfactor', fillfactor],
  ['0005_integrity', integrity],
  ['0006_lifecycle', lifecycle],
  ['0007_removal_guard', removalGuard],
  ['0008_dead_letters', deadLetters],
  ['0009_history', history],
  ['0011_mapping_columns', mappingColumns],
];
