import { existsSync } from 'node:fs';

/**
 * Whether a Docker engine answers. Cheap checks first (no socket, no DOCKER_HOST: no engine), then
 * testcontainers' own runtime discovery, bounded in time so a dead socket cannot stall the suite.
 */
export async function dockerAvailable(): Promise<boolean> {
  if (!process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const probe = getContainerRuntimeClient().then(() => true);
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000).unref());
    return await Promise.race([probe, timeout]);
  } catch {
    return false;
  }
}

export async function startContainer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:16-alpine')
    .withCommand(['postgres', '-c', 'wal_level=logical', '-c', 'max_replication_slots=64', '-c', 'max_wal_senders=64', '-c', 'fsync=off'])
    .start();
  return { url: container.getConnectionUri(), stop: async () => void (await container.stop()) };
}
