// @ts-check
/** Stops what globalSetup started, also after failed tests. */
export default async function globalTeardown() {
  const g = /** @type {any} */ (globalThis);
  await g.__cqrsSyncStack?.stop();
  g.__cqrsSyncStack = undefined;
}
