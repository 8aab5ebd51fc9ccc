import type { Pgoutput } from 'pg-logical-replication';
import { typeChangeStops, type PgType } from '../mapping/column-types.js';
import type { Mapper } from '../mapping/mapper.js';
import type { Logger } from '../observability/logger.js';
import { compareLsn, type Lsn } from './lsn.js';
import type { SourceBaseline } from './setup.js';

/** Why a mapping stopped, and the commit position of the transaction that showed it. */
export interface StopNotice {
  mapping: string;
  code: 'MAPPING_SCHEMA_CHANGED' | 'MAPPING_TABLE_DROPPED';
  reason: string;
  lsn: Lsn | null;
}

/** Describes type oids (pg_type) for the type-change rules; cached by the tracker. */
export type DescribeTypes = (oids: readonly number[]) => Promise<Map<number, PgType>>;

/**
 * Follows pgoutput's Relation messages. Only a change the mapping cannot read stops it: a mapped column that
 * disappears, or whose new type its conversion cannot read (`text → integer` for an email). text ↔ varchar,
 * int2 → int4 → int8, numeric precision, timestamp ↔ timestamptz, a domain over the same base type go on
 * (src/mapping/column-types.ts). A stop names types, never oids; the other mappings go on; the stop is
 * remembered (onStop) so that a restart with a working mapping reconciles what was skipped meanwhile.
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
  private readonly typeCache = new Map<number, PgType>();

  constructor(
    mappers: readonly Mapper[],
    private readonly baseline: SourceBaseline,
    private readonly log: Logger,
    private readonly onStop: (notice: StopNotice) => void = () => undefined,
    private readonly describeTypes: DescribeTypes | null = null,
  ) {
    for (const m of mappers) this.byTable.set(`${m.schema}.${m.table}`, m);
    // Mappings that could not start (their stop is already recorded) skip their changes from the first one.
    for (const [name, stop] of baseline.stops) this.stopped.set(name, stop.reason);
  }

  /** `commitLsn`: the commit position of the transaction the message belongs to, when known. */
  async onRelation(rel: Pgoutput.MessageRelation, commitLsn?: Lsn): Promise<void> {
    const mapper = this.byTable.get(`${rel.schema}.${rel.name}`) ?? null;
    this.byOid.set(rel.relationOid, mapper);
    if (!mapper || this.stopped.has(mapper.name)) return;
    const cols = new Map(rel.columns.map((c) => [c.name, c.typeOid]));
    const expected = this.baseline.types.get(mapper.name) ?? new Map<string, number>();
    const beforeStart = commitLsn !== undefined && compareLsn(commitLsn, this.baseline.preparedAt) < 0;
    for (const column of mapper.columns) {
      const now = cols.get(column);
      let reason: string | null = null;
      if (now === undefined && beforeStart && expected.has(column)) {
        this.noteUnpublished(mapper.name, `${rel.schema}.${rel.name}.${column}`);
        continue;
      }
      if (now === undefined) reason = `column ${rel.schema}.${rel.name}.${column} no longer exists`;
      else if (expected.has(column) && expected.get(column) !== now) {
        reason = await this.typeChange(mapper, column, expected.get(column)!, now);
        if (reason === null) {
          expected.set(column, now);
          continue;
        }
        reason = `column ${rel.schema}.${rel.name}.${column} changed type: ${reason}`;
      }
      if (reason) {
        this.stop(mapper, column, reason, commitLsn ?? null);
        return;
      }
    }
  }

  /** Whether the mapping still reads the column after its type changed; a reason naming the types when not. */
  private async typeChange(mapper: Mapper, column: string, from: number, to: number): Promise<string | null> {
    const types = await this.describe([from, to]);
    const a = types.get(from);
    const b = types.get(to);
    if (!a || !b) return `a type this connector cannot look up (oid ${from} → ${to})`;
    const stops = typeChangeStops(mapper.columnUses.get(column) ?? [], a, b);
    if (stops === null) {
      this.log.info({ mapping: mapper.name, column, from: a.name, to: b.name }, `column ${column} of mapping ${mapper.name} changed type ${a.name} → ${b.name}; the mapping reads it as before`);
    }
    return stops;
  }

  private async describe(oids: number[]): Promise<Map<number, PgType>> {
    const missing = oids.filter((o) => !this.typeCache.has(o));
    if (missing.length > 0 && this.describeTypes) for (const [oid, t] of await this.describeTypes(missing)) this.typeCache.set(oid, t);
    return new Map(oids.filter((o) => this.typeCache.has(o)).map((o) => [o, this.typeCache.get(o)!]));
  }

  /** Stops a mapping from outside the stream (its table was dropped): its changes are skipped from now on. */
  stopMapping(mapping: string, reason: string): void {
    this.stopped.set(mapping, reason);
  }

  private stop(mapper: Mapper, column: string, reason: string, lsn: Lsn | null): void {
    this.stopped.set(mapper.name, reason);
    this.log.error(
      { code: 'MAPPING_SCHEMA_CHANGED', mapping: mapper.name, column, lsn },
      `mapping ${mapper.name} stopped: ${reason}. Its changes are skipped (the slot goes on, so WAL does not pile up) and the stop is remembered: ` +
        `fix the mapping or the table and restart; the connector then reconciles the mapping by itself`,
    );
    this.onStop({ mapping: mapper.name, code: 'MAPPING_SCHEMA_CHANGED', reason, lsn });
  }

  private noteUnpublished(mapping: string, column: string): void {
    if (this.unpublishedLogged.has(column)) return;
    this.unpublishedLogged.add(column);
    this.log.warn(
      { mapping, column },
      `changes committed before this start come without ${column}, which the publication did not carry then; its value stays unknown for them (a snapshot of mapping ${mapping} reads it)`,
    );
  }

  /** The live mapper of a relation, or undefined when unmapped or stopped. pgoutput sends a Relation before its first change. */
  mapperFor(rel: Pgoutput.MessageRelation): Mapper | undefined {
    let mapper = this.byOid.get(rel.relationOid);
    if (mapper === undefined) {
      mapper = this.byTable.get(`${rel.schema}.${rel.name}`) ?? null;
      this.byOid.set(rel.relationOid, mapper);
    }
    if (!mapper || this.stopped.has(mapper.name)) return undefined;
    return mapper;
  }
}
