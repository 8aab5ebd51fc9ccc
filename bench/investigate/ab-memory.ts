/**
 * Investigation aid: the memory scenario's backlog under several sets of Node flags, one after another
 * (AB='--max-old-space-size=96;' N=100000): how much of the peak RSS is V8's lazy heap growth.
 */
import { startCluster, stopCluster } from '../lib/pg.js';
import { backlog } from '../scenarios/memory.js';
const N = Number(process.env.N ?? 100000);
const variants = (process.env.AB ?? '').split(';');
const cluster = await startCluster();
for (const v of variants) {
  const r = await backlog(cluster, N, v.split(' ').filter(Boolean));
  console.log(`${v || 'default'}: peak ${r.peakMb} MB (captured ${r.peakCapturedMb}), capture ${r.secondsToCapture} s, deliver ${r.secondsToDeliver} s`);
}
await stopCluster(cluster, 'abm');
