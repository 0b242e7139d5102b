import type { HarnessConfig } from './config.js';

export type ServerName = 'kafka' | 'schema-registry' | 'mysql' | 'mongodb';
export const SERVER_NAMES: readonly ServerName[] = ['kafka', 'schema-registry', 'mysql', 'mongodb'];

/** Where a server came from: started here, given by an env URL, or a container. */
export type ServerOrigin = 'local' | 'env' | 'docker';

export interface ServerHandle {
  readonly name: ServerName;
  readonly origin: ServerOrigin;
  /** What runs, with its version: `Apache Kafka 3.9.1 (local KRaft, 127.0.0.1:40123)`. */
  readonly description: string;
  /** The variables a client needs, e.g. `KAFKA_BROKERS`. */
  readonly env: Readonly<Record<string, string>>;
  /** Process ids of what this handle started (empty for env-given servers). */
  pids(): number[];
  /** Idempotent. Closes only what this handle started. */
  stop(): Promise<void>;
  /** Local servers only: stop (SIGTERM) and start again on the same port and data. */
  restart?: () => Promise<void>;
  /** Local servers only: kill -9 the server, leaving it down until `start()`. */
  kill?: () => Promise<void>;
  start?: () => Promise<void>;
}

export interface ServerContext {
  readonly config: HarnessConfig;
  readonly log: (line: string) => void;
}
