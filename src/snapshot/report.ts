import type { Logger } from '../observability/logger.js';
import type { RunOutcome } from './runner.js';

/** Where a snapshot or resync stands. Rates and ETAs are over this run only (a resumed run starts at 0). */
export interface Progress {
  mapping: string;
  mode: 'snapshot' | 'resync' | 'plan';
  /** Rows done, including those of an earlier run this one resumed. */
  rowsDone: number;
  /** Estimate; null when unknown. */
  rowsTotal: number | null;
  /** Rows read by this run. */
  runRows: number;
  /** Milliseconds since this run started. */
  elapsedMs: number;
}

export interface ProgressReporter {
  update(p: Progress): void;
  done(p: Progress): void;
}

export function rowsPerSecond(p: Progress): number {
  return p.elapsedMs > 0 ? (p.runRows * 1000) / p.elapsedMs : 0;
}

/** Seconds left at this run's rate; null when the total or the rate is unknown. */
export function etaSeconds(p: Progress): number | null {
  const rate = rowsPerSecond(p);
  if (p.rowsTotal === null || rate <= 0) return null;
  return Math.max(0, (p.rowsTotal - p.rowsDone) / rate);
}

export function formatDuration(seconds: number): string {
  if (seconds < 9.95) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const n = (v: number) => Math.round(v).toLocaleString('en');

/** "users: 31,000/50,000 rows (62%), 15,200 rows/s, ETA 1s" */
export function formatProgress(p: Progress): string {
  const total = p.rowsTotal !== null && p.rowsTotal > 0 ? `/${n(p.rowsTotal)} rows (${Math.min(100, Math.floor((p.rowsDone / p.rowsTotal) * 100))}%)` : ' rows';
  const eta = etaSeconds(p);
  return `${p.mapping}: ${n(p.rowsDone)}${total}, ${n(rowsPerSecond(p))} rows/s${eta === null ? '' : `, ETA ${formatDuration(eta)}`}`;
}

/** Periodic log lines, for logs and pipes: one at most every `intervalMs`, and one at the end. */
export class LogProgress implements ProgressReporter {
  private last = 0;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  update(p: Progress): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    this.log.info(fields(p), `${p.mode} progress: ${formatProgress(p)}`);
  }

  done(p: Progress): void {
    this.log.info(fields(p), `${p.mode} of ${p.mapping} done: ${n(p.runRows)} rows in ${formatDuration(p.elapsedMs / 1000)} (${n(rowsPerSecond(p))} rows/s)`);
  }
}

function fields(p: Progress) {
  const eta = etaSeconds(p);
  return { mapping: p.mapping, rowsDone: p.rowsDone, rowsTotal: p.rowsTotal, rowsPerSecond: Math.round(rowsPerSecond(p)), etaSeconds: eta === null ? null : Math.round(eta) };
}

/** A progress bar redrawn in place on a terminal (at most ten times a second). */
export class BarProgress implements ProgressReporter {
  private last = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly width = 30,
  ) {}

  update(p: Progress): void {
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.draw(p);
  }

  done(p: Progress): void {
    this.draw(p);
    this.out.write('\n');
  }

  private draw(p: Progress): void {
    const ratio = p.rowsTotal ? Math.min(1, p.rowsDone / p.rowsTotal) : 0;
    const full = Math.round(ratio * this.width);
    const bar = p.rowsTotal ? `[${'█'.repeat(full)}${'░'.repeat(this.width - full)}] ` : '';
    this.out.write(`\r\x1b[2K${p.mode} ${bar}${formatProgress(p)}`);
  }
}

/** A bar when `out` is a terminal, log lines otherwise. */
export function progressReporter(out: NodeJS.WriteStream, log: Logger, intervalMs: number): ProgressReporter {
  return out.isTTY ? new BarProgress(out) : new LogProgress(log, intervalMs);
}

/** "snapshot users: 50,000 rows in 4s (12,000 rows/s), 49,990 queued, 10 dead-lettered" */
export function formatOutcome(mode: string, o: RunOutcome): string {
  const rate = o.seconds > 0 ? o.rows / o.seconds : o.rows;
  const removals = o.reconciled ? `, ${n(o.removed)} removal(s) of rows gone` : '';
  return `${mode} ${o.mapping}: ${n(o.rows)} rows in ${formatDuration(o.seconds)} (${n(rate)} rows/s), ${n(o.enqueued)} queued${removals}, ${n(o.deadLettered)} dead-lettered`;
}
