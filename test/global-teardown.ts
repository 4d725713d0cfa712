export default async function globalTeardown(): Promise<void> {
  // Servers started by globalSetup are stopped here (see test/servers.ts once stores need them).
}
