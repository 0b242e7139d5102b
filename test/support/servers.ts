import { randomUUID } from 'node:crypto';

export interface TestServers {
  readonly kafkaBrokers: string[];
  readonly schemaRegistryUrl: string;
  readonly mysqlUrl: string;
  readonly mysqlSinkUrl: string;
  readonly mongodbUri: string;
  readonly mongoKind: 'real' | 'stand-in';
}

/** The servers globalSetup started (or the env gave). Only for int and e2e tests. */
export function testServers(): TestServers {
  const need = (name: string): string => {
    const v = process.env[name];
    if (!v) {
      throw new Error(`${name} is not set: run this test through \`npm run test:int\` (or set it)`);
    }
    return v;
  };
  return {
    kafkaBrokers: need('KAFKA_BROKERS').split(','),
    schemaRegistryUrl: need('SCHEMA_REGISTRY_URL'),
    mysqlUrl: need('MYSQL_URL'),
    mysqlSinkUrl: process.env.MYSQL_SINK_URL ?? need('MYSQL_URL'),
    mongodbUri: need('MONGODB_URI'),
    mongoKind: process.env.CQRS_SYNC_MONGO_KIND === 'real' ? 'real' : 'stand-in',
  };
}

export const realMongod = (): boolean => process.env.CQRS_SYNC_MONGO_KIND === 'real';

/** A name no other test uses: databases, topics, consumer groups. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
