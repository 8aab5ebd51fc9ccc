import type { Command } from 'commander';
import { register as emulator } from './emulator.js';

/**
 * One file per command under src/cli/; each exports `register(program)`. This list is the only place that
 * knows them all.
 */
type Register = (program: Command) => void;
const registers: Register[] = [emulator];

export function registerCommands(program: Command): void {
  for (const register of registers) register(program);
}
