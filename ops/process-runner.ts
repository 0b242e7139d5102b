/**
 * What the relay and the sink share as processes: the operations endpoint each serves, and the one
 * runner from signals to exit code their `run` commands use. SIGTERM/SIGINT stop the process (or
 * end its start-up wait); a second signal exits at once; a clean stop is exit 0, a failure 1.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { isPipelineError } from '../schemas/errors.js';
import { startOpsServer, type OpsServer, type ReadinessCheck } from './http.js';

export interface OpsEndpointOptions {
  /** None: no endpoint. 0 picks a free port. */
  readonly port: number | undefined;
  readonly host?: string | undefined;
  readonly log: Logger;
  readonly registries: readonly Registry[];
  readonly readiness: () => Promise<Record<string, ReadinessCheck>>;
  readonly liveness: () => boolean;
}

/**
 * `/metrics`, `/healthz` and `/readyz` when a port is configured. One that cannot start (the port is
 * taken) is logged as an error and the process goes on without it: the pipeline matters more than
 * its endpoint.
 */
export async function startOpsEndpoint(o: OpsEndpointOptions): Promise<OpsServer | undefined> {
  if (o.port === undefined) return undefined;
  try {
    const ops = await startOpsServer({
      port: o.port,
      ...(o.host ? { host: o.host } : {}),
      registries: o.registries,
      readiness: o.readiness,
      liveness: o.liveness,
    });
    o.log.info({ url: ops.url }, 'operations endpoint: /metrics /healthz /readyz');
    return ops;
  } catch (e) {
    o.log.error({ err: e, port: o.port }, 'operations endpoint could not start');
    return undefined;
  }
}

/** What the runner needs of a started process (`RelayHandle`, `SinkHandle`). */
export interface RunnableProcess {
  /** Resolves when it stopped, rejects when it failed. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export interface RunProcessOptions {
  /** `relay`, `sink`: names the process in the log lines. */
  readonly name: string;
  readonly logger: Logger;
  /** Starts the process; aborting `signal` ends a start-up wait with a `stopped` error. */
  readonly start: (signal: AbortSignal) => Promise<RunnableProcess>;
  /** Registers the shutdown handler and returns its removal; default SIGTERM and SIGINT. */
  readonly onSignal?: (handler: (signal?: string) => void) => () => void;
  /** What a second signal calls (default `process.exit`): the operator does not want to wait. */
  readonly exit?: (code: number) => void;
}

/** Runs a process until it stops (0) or fails (1). */
export async function runProcess(o: RunProcessOptions): Promise<number> {
  const { logger: log, name } = o;
  const onSignal = o.onSignal ?? processSignals;
  let started: RunnableProcess | undefined;
  let signals = 0;
  // Ends the start-up wait (a dependency down) at once.
  const starting = new AbortController();
  // Listening before the start, so a signal that comes while starting stops the process once it is
  // up instead of killing it mid-start.
  const off = onSignal((signal) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, `second signal: exiting without waiting for the ${name} to stop`);
      log.flush();
      (o.exit ?? ((code: number) => process.exit(code)))(1);
      return;
    }
    log.info({ signal }, `signal: stopping the ${name}`);
    starting.abort();
    void started?.stop();
  });
  try {
    started = await o.start(starting.signal);
    if (signals > 0) void started.stop();
    await started.done;
    return 0;
  } catch (e) {
    if (isPipelineError(e, 'stopped')) return 0;
    log.error({ err: e }, `${name} crashed`);
    return 1;
  } finally {
    off();
    log.flush();
  }
}

function processSignals(handler: (signal?: string) => void): () => void {
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
