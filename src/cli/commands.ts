import type { Command } from 'commander';
import { register as deadLetters } from './dead-letters.js';
import { register as demo } from './demo.js';
import { register as emulator } from './emulator.js';
import { register as inspect } from './inspect.js';
import { register as migrate } from './migrate.js';
import { register as orphans } from './orphans.js';
import { register as plan } from './plan.js';
import { register as removals } from './removals.js';
import { register as resync } from './resync.js';
import { register as run } from './run.js';
import { register as snapshot } from './snapshot.js';
import { register as status } from './status.js';
import { register as validateConfig } from './validate-config.js';

/**
 * One file per command under src/cli/; each exports `register(program)`. This list is the only place that
 * knows them all.
 */
type Register = (program: Command) => void;
const registers: Register[] = [validateConfig, migrate, run, snapshot, resync, plan, status, inspect, deadLetters, removals, orphans, demo, emulator];

export function registerCommands(program: Command): void {
  for (const register of registers) register(program);
}
