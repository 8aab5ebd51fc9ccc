import type { Config } from '../config/schema.js';
import type { DbHandle } from '../db/index.js';
import type { StoreContext } from '../store/context.js';

/**
 * The commands that read or change the connector's own tables (dead-letters, removals, orphans): load the
 * configuration (no Wooxy token needed), let `check` refuse it before anything connects, open the state
 * where postgres.stateUrl says, run `work`, close. The modules load lazily, so these commands start fast.
 */
export async function withStore<T>(
  file: string,
  purpose: string,
  work: (ctx: StoreContext, config: Config, handle: DbHandle) => Promise<T>,
  check: (config: Config) => void = () => undefined,
): Promise<T> {
  const [{ loadConfig }, { createDb, dbOptions }, { storeContext }] = await Promise.all([
    import('../config/loader.js'),
    import('../db/index.js'),
    import('../store/context.js'),
  ]);
  const config = await loadConfig(file, process.env, { withoutWooxy: true });
  check(config);
  const handle = createDb(dbOptions(config.postgres, { purpose, poolSize: 2 }));
  try {
    return await work(storeContext(handle), config, handle);
  } finally {
    await handle.close();
  }
}
