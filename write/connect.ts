import { MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { PipelineError } from '../schemas/errors.js';
import { ConfluentRegistry, type RegistryPort } from '../schemas/registry.js';
import type { AggregateLimits } from './limits.js';
import { MongoWriteStore } from './mongo-store.js';
import { createWriteSide, type WriteSide, type WriteSideConfig } from './write-side.js';

export interface ConnectWriteSideOptions {
  /** The config module (`cqrs-sync.config.ts`'s default export): its aggregates and topic prefix. */
  readonly config: WriteSideConfig;
  /** The write model's database. */
  readonly database: string;
  /** A client to borrow (not closed by `close()`), or the URI of one to create (and close). */
  readonly mongoClient?: MongoClient;
  readonly mongodbUri?: string;
  /** A registry port to use, or the URL of a Confluent-compatible registry. */
  readonly registry?: RegistryPort;
  readonly schemaRegistryUrl?: string;
  /** Collection per aggregate type; default `aggregateCollectionName(type)`. */
  readonly collections?: Readonly<Record<string, string>>;
  readonly limits?: Partial<AggregateLimits>;
  readonly metrics?: Registry;
  readonly logger?: Logger;
  /** Re-runs of a command on `concurrency_conflict`. Default 3. */
  readonly maxConflictRetries?: number;
}

/** The MongoDB write side; `client` is the one it uses (a relay in the same process may borrow it). */
export interface MongoWriteSide extends WriteSide {
  readonly client: MongoClient;
}

/**
 * One call from the config to the first command on MongoDB: registers the config's schemas, creates
 * the store (and its indexes) and returns `repository(Class)`, `handle(command, input)` and
 * `close()`, which closes the client only when it created it.
 */
export async function connectWriteSide(options: ConnectWriteSideOptions): Promise<MongoWriteSide> {
  const client = options.mongoClient ?? new MongoClient(need(options.mongodbUri, 'mongodbUri'));
  const ownClient = options.mongoClient === undefined;
  try {
    const store = new MongoWriteStore({
      client,
      database: options.database,
      ...(options.collections ? { collections: options.collections } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    const registry =
      options.registry ??
      new ConfluentRegistry(need(options.schemaRegistryUrl, 'schemaRegistryUrl'));
    const side = await createWriteSide({
      config: options.config,
      store,
      registry,
      ...(options.maxConflictRetries === undefined
        ? {}
        : { maxConflictRetries: options.maxConflictRetries }),
    });
    await store.init(side.catalog.aggregates.map((a) => a.type));
    return {
      ...side,
      client,
      close: async () => {
        if (ownClient) await client.close();
      },
    };
  } catch (e) {
    if (ownClient) await client.close();
    throw e;
  }
}

function need(value: string | undefined, name: string): string {
  if (value) return value;
  const other = name === 'mongodbUri' ? 'mongoClient' : 'registry';
  throw new PipelineError('config_invalid', `connectWriteSide: give ${name} or ${other}`, {
    retriable: false,
  });
}
