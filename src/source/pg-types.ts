import pg from 'pg';

/**
 * How column values are decoded, for the replication stream (pg-logical-replication decodes pgoutput's text
 * values with pg's type parsers) and for snapshot reads alike: a row must project to the same contact
 * whichever way it arrived, or every snapshot row would look changed to the stream and back.
 *
 * Calendar values stay text: a JS Date would move a `date` or a `timestamp without time zone` by the
 * process's time zone. (Global to pg in this process; the connector's own tables use neither type.)
 */
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);
pg.types.setTypeParser(pg.types.builtins.TIMESTAMP, (v) => v);
