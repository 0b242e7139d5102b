import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadHarnessConfig } from '../../infra/local/config.js';
import { startStack, type Stack } from '../../infra/local/stack.js';
import type { ServerName } from '../../infra/local/types.js';

/** The client variables globalSetup exports; left out so the stack starts servers of its own. */
const CLIENT_VARS = new Set([
  'KAFKA_BROKERS',
  'SCHEMA_REGISTRY_URL',
  'MYSQL_URL',
  'MYSQL_SINK_URL',
  'MONGODB_URI',
]);

/**
 * Local servers of a test file's own (`only`), in a temporary run folder: for tests that stop or
 * kill a server, which must leave the run's shared servers alone. `stack.env` holds their URLs.
 */
export async function startOwnStack(only: readonly ServerName[], prefix: string): Promise<Stack> {
  return startStack({ only, config: loadHarnessConfig(ownServersEnv(prefix)) });
}

/** This process's environment without the run's server URLs, and a fresh run folder. */
export function ownServersEnv(
  prefix: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !CLIENT_VARS.has(k)));
  return {
    ...env,
    CQRS_SYNC_SERVERS: 'local',
    CQRS_SYNC_RUN_DIR: mkdtempSync(path.join(tmpdir(), `${prefix}-`)),
    ...extra,
  };
}
