/**
 * Log sequence numbers. Postgres prints them as `16/B374D848`; the replication protocol and some tools give
 * zero-padded forms (`00000016/B374D848`). Everything here compares and stores one canonical form.
 */
import { CdcError } from '../errors.js';

export type Lsn = string;

export const ZERO_LSN: Lsn = '0/0';

export function lsnToBigInt(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) throw new CdcError('LSN_INVALID', `not an LSN: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function bigIntToLsn(value: bigint): Lsn {
  // An LSN is an unsigned 64-bit position: anything else would print as a string that reads back differently.
  if (value < 0n || value > 0xffffffffffffffffn) throw new CdcError('LSN_INVALID', `${value} is outside 0 … 2^64 − 1, not an LSN`);
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function normalizeLsn(lsn: string): Lsn {
  return bigIntToLsn(lsnToBigInt(lsn));
}

export function compareLsn(a: string, b: string): number {
  const x = lsnToBigInt(a);
  const y = lsnToBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function maxLsn(a: string, b: string): Lsn {
  return compareLsn(a, b) >= 0 ? normalizeLsn(a) : normalizeLsn(b);
}
