import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isHarnessError } from '../../infra/local/errors.js';
import { startStack, type Stack } from '../../infra/local/stack.js';

declare global {
  var __cqrsSyncStack: Stack | undefined;
}

interface GlobalConfigLike {
  selectProjects?: string[] | undefined;
  rootDir: string;
}

/** Starts every server once per run, unless only unit tests were selected. The lines that say what
 * runs are kept for the reporter, which prints them again under jest's summary. */
export default async function globalSetup(globalConfig: GlobalConfigLike): Promise<void> {
  const selected = globalConfig.selectProjects;
  if (selected && selected.every((p) => p === 'unit')) {
    process.env.CQRS_SYNC_SERVER_LINES = 'servers: none started (unit tests only)';
    return;
  }
  console.log('\nstarting servers (first run installs them; later runs reuse the cache)…');
  const started = Date.now();
  let stack: Stack;
  try {
    stack = await startStack({
      log: (l) => {
        console.log(l);
      },
    });
  } catch (e) {
    console.error(`\nserver start-up failed:\n${isHarnessError(e) ? e.message : String(e)}`);
    throw e;
  }
  globalThis.__cqrsSyncStack = stack;
  Object.assign(process.env, stack.env);
  const lines = stack.lines();
  process.env.CQRS_SYNC_SERVER_LINES = lines.join('\n');
  mkdirSync(stack.config.runDir, { recursive: true });
  writeFileSync(path.join(stack.config.runDir, 'servers.txt'), `${lines.join('\n')}\n`);
  console.log(`servers up in ${((Date.now() - started) / 1000).toFixed(1)} s:`);
  for (const l of lines) console.log(`  ${l}`);

  // Interrupted runs stop the servers too (the watchdog covers a kill -9 of this process).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping servers`);
      void stack.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
}
