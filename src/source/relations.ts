import type { Pgoutput } from 'pg-logical-replication';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import { compareLsn, type Lsn } from './lsn.js';
import type { SourceBaseline } from './setup.js';

export interface TrackedRelation {
  mapper: Mapper;
}

/**
 * Follows pgoutput's Relation messages. A mapped column that disappears or changes type stops that mapping —
 * with an error naming the column — while the other mappings go on. A stopped mapping's changes are skipped
 * until the configuration is fixed and the connector restarted; resync it then.
 *
 * Except where the column is missing from a transaction that committed before this start: walsenders decode
 * each change with the publication as it was when the change was written, so after a mapping starts to read a
 * column, the changes queued in the slot meanwhile come without it (a column list that did not name it yet, or
 * a column added to the table since). It existed at start (the prerequisites checked), so it was not dropped:
 * its values in those changes are unknown, as an unchanged TOASTed value is, and the mapping goes on.
 */
export class RelationTracker {
  private readonly byTable = new Map<string, Mapper>();
  private readonly byOid = new Map<number, Mapper | null>();
  readonly stopped = new Map<string, string>();
  private readonly unpublishedLogged = new Set<string>();

  constructor(
    mappers: readonly Mapper[],
    private readonly baseline: SourceBaseline,
    private readonly log: Logger,
    private readonly onStop: (mapping: string, reason: string) => void = () => undefined,
  ) {
    for (const m of mappers) this.byTable.set(`${m.schema}.${m.table}`, m);
  }

  /** `commitLsn`: the commit position of the transaction the message belongs to, when known. */
  onRelation(rel: Pgoutput.MessageRelation, commitLsn?: Lsn): void {
    const mapper = this.byTable.get(`${rel.schema}.${rel.name}`) ?? null;
    this.byOid.set(rel.relationOid, mapper);
    if (!mapper || this.stopped.has(mapper.name)) return;
    const cols = new Map(rel.columns.map((c) => [c.name, c.typeOid]));
    const expected = this.baseline.types.get(mapper.name) ?? new Map<string, number>();
    const beforeStart = commitLsn !== undefined && compareLsn(commitLsn, this.baseline.preparedAt) < 0;
    for (const column of mapper.columns) {
      const now = cols.get(column);
      let reason: string | undefined;
      if (now === undefined && beforeStart && expected.has(column)) {
        this.noteUnpublished(mapper.name, `${rel.schema}.${rel.name}.${column}`);
        continue;
      }
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

  private noteUnpublished(mapping: string, column: string): void {
    if (this.unpublishedLogged.has(column)) return;
    this.unpublishedLogged.add(column);
    this.log.warn(
      { mapping, column },
      `changes committed before this start come without ${column}, which the publication did not carry then; its value stays unknown for them (a snapshot of mapping ${mapping} reads it)`,
    );
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
