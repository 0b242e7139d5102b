// @ts-check
// Plain ESM loaded by jest as is; the harness is TypeScript, loaded through tsx.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tsImport } from 'tsx/esm/api';

/**
 * Starts every server once per run; int and e2e share it. The lines that say what runs are kept
 * for the reporter, which prints them again under jest's summary.
 */
export default async function globalSetup() {
  const g = /** @type {any} */ (globalThis);
  if (g.__cqrsSyncStack) return;
  /** @type {typeof import('../../infra/local/stack.js')} */
  const { startStack } = await tsImport('../../infra/local/stack.ts', import.meta.url);
  /** @type {typeof import('../../infra/local/errors.js')} */
  const { isHarnessError } = await tsImport('../../infra/local/errors.ts', import.meta.url);
  console.log('\nstarting servers (the first run installs them; later runs reuse the cache)…');
  const started = Date.now();
  let stack;
  try {
    stack = await startStack({ log: (/** @type {string} */ l) => console.log(l) });
  } catch (e) {
    console.error(`\nserver start-up failed:\n${isHarnessError(e) ? e.message : String(e)}`);
    throw e;
  }
  g.__cqrsSyncStack = stack;
  Object.assign(process.env, stack.env);
  const lines = stack.lines();
  process.env.CQRS_SYNC_SERVER_LINES = lines.join('\n');
  mkdirSync(stack.config.runDir, { recursive: true });
  writeFileSync(path.join(stack.config.runDir, 'servers.txt'), `${lines.join('\n')}\n`);
  console.log(`servers up in ${((Date.now() - started) / 1000).toFixed(1)} s:`);
  for (const l of lines) console.log(`  ${l}`);

  // Interrupted runs stop the servers too (the watchdog covers a kill -9 of this process).
  for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping servers`);
      void stack.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
}
