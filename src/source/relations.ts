import type { Pgoutput } from 'pg-logical-replication';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import type { ColumnTypes } from './setup.js';

export interface TrackedRelation {
  mapper: Mapper;
}

/**
 * Follows pgoutput's Relation messages. A mapped column that disappears or changes type stops that mapping —
 * with an error naming the column — while the other mappings go on. A stopped mapping's changes are skipped
 * until the configuration is fixed and the connector restarted; resync it then.
 */
export class RelationTracker {
  private readonly byTable = new Map<string, Mapper>();
  private readonly byOid = new Map<number, Mapper | null>();
  readonly stopped = new Map<string, string>();

  constructor(
    mappers: readonly Mapper[],
    private readonly baseline: ColumnTypes,
    private readonly log: Logger,
    private readonly onStop: (mapping: string, reason: string) => void = () => undefined,
  ) {
    for (const m of mappers) this.byTable.set(`${m.schema}.${m.table}`, m);
  }

  onRelation(rel: Pgoutput.MessageRelation): void {
    const mapper = this.byTable.get(`${rel.schema}.${rel.name}`) ?? null;
    this.byOid.set(rel.relationOid, mapper);
    if (!mapper || this.stopped.has(mapper.name)) return;
    const cols = new Map(rel.columns.map((c) => [c.name, c.typeOid]));
    const expected = this.baseline.get(mapper.name) ?? new Map<string, number>();
    for (const column of mapper.columns) {
      const now = cols.get(column);
      let reason: string | undefined;
      if (now === undefined) reason = `column ${rel.schema}.${rel.name}.${column} no longer exists`;
      else if (expected.has(column) && expected.get(column) !== now) {
        reason = `column ${rel.schema}.${rel.name}.${column} changed type (oid ${expected.get(column)} → ${now})`;
      }
      if (reason) {
        this.stopped.set(mapper.name, reason);
        this.log.error(
          { code: 'MAPPING_SCHEMA_CHANGED', mapping: mapper.name, column },
          `mapping ${mapper.name} stopped: ${reason}; fix the mapping and restart, then resync it`,
        );
        this.onStop(mapper.name, reason);
        return;
      }
    }
  }

  /** The live mapper of a relation, or undefined when unmapped or stopped. */
  mapperFor(rel: Pgoutput.MessageRelation): Mapper | undefined {
    let mapper = this.byOid.get(rel.relationOid);
    if (mapper === undefined) {
      this.onRelation(rel);
      mapper = this.byOid.get(rel.relationOid);
    }
    if (!mapper || this.stopped.has(mapper.name)) return undefined;
    return mapper;
  }
}
