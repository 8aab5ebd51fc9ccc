/**
 * Crash points for the crash tests: WOOXY_CDC_FAILPOINT=name[:n] kills the process with SIGKILL the n-th time
 * (default: first) execution reaches `failpoint(name)`, exactly as a power cut would. Unset, it costs one
 * comparison.
 */
const spec = process.env.WOOXY_CDC_FAILPOINT;
const [target, nth] = spec ? spec.split(':') : [];
let hits = 0;

export function failpoint(name: string): void {
  if (target !== name) return;
  hits++;
  if (hits >= Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}
