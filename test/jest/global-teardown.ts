/** Stops what globalSetup started, also after failed tests. */
export default async function globalTeardown(): Promise<void> {
  await globalThis.__cqrsSyncStack?.stop();
  globalThis.__cqrsSyncStack = undefined;
}
