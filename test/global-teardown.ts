import type { RunningServer } from '../scripts/servers';

/** Stops the servers globalSetup started. */
export default async function globalTeardown(): Promise<void> {
  const servers = (globalThis as { __gitmlServers?: RunningServer[] }).__gitmlServers ?? [];
  await Promise.all(servers.map((s) => s.stop()));
}
