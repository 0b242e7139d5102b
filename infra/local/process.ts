import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from './errors.js';
import { tailFile } from './logs.js';

export type ProcessState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface ProcessSpec {
  /** Server name used in every message, e.g. `kafka`. */
  readonly server: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** stdout and stderr are appended here. */
  readonly logFile: string;
  /** Resolves true once the server really serves (a query, not just an open port). */
  readonly ready: () => Promise<boolean>;
  readonly startTimeoutMs: number;
  /** Time between SIGTERM and SIGKILL on stop. */
  readonly stopGraceMs: number;
  readonly pollIntervalMs?: number;
}

/**
 * A server process in its own process group, so that stopping it also stops what it forked. Every
 * live group is known to a watchdog that outlives us and reaps the group if we die without stopping.
 */
export class ManagedProcess {
  state: ProcessState = 'starting';
  readonly server: string;
  readonly logFile: string;
  readonly pid: number;
  private readonly child: ChildProcess;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stopping: Promise<void> | undefined;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(spec: ProcessSpec, child: ChildProcess) {
    this.server = spec.server;
    this.logFile = spec.logFile;
    this.child = child;
    if (child.pid === undefined) throw new Error('spawned process has no pid');
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        forget(this.pid);
        if (this.state !== 'stopping' && this.state !== 'stopped') this.state = 'failed';
        resolve({ code, signal });
      });
    });
  }

  static async start(spec: ProcessSpec): Promise<ManagedProcess> {
    mkdirSync(path.dirname(spec.logFile), { recursive: true });
    const fd = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(spec.command, [...spec.args], {
        cwd: spec.cwd,
        env: { ...process.env, ...spec.env },
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const spawnError = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => {
        resolve(undefined);
      });
      child.once('error', resolve);
    });
    if (spawnError) {
      throw new HarnessError('prerequisite_missing', `cannot run ${spec.command}`, {
        server: spec.server,
        retriable: false,
        cause: spawnError,
        logFile: spec.logFile,
      });
    }
    const proc = new ManagedProcess(spec, child);
    liveGroups.add(proc.pid);
    watchdog()?.send({ add: proc.pid });
    await proc.waitReady(spec);
    return proc;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  private async waitReady(spec: ProcessSpec): Promise<void> {
    const deadline = Date.now() + spec.startTimeoutMs;
    const interval = spec.pollIntervalMs ?? 250;
    for (;;) {
      if (this.exitInfo) {
        const { code, signal } = this.exitInfo;
        throw new HarnessError(
          'exited_early',
          `exited during start-up (code ${String(code)}, signal ${String(signal)})`,
          {
            server: spec.server,
            retriable: false,
            logFile: spec.logFile,
            logTail: await tailFile(spec.logFile),
          },
        );
      }
      if (await spec.ready().catch(() => false)) {
        this.state = 'running';
        return;
      }
      if (Date.now() >= deadline) {
        await this.stop(spec.stopGraceMs);
        this.state = 'failed';
        throw new HarnessError(
          'start_timeout',
          `not ready within ${spec.startTimeoutMs} ms; stopped it`,
          {
            server: spec.server,
            retriable: true,
            advice: 'read the log below; on a slow machine raise CQRS_SYNC_START_TIMEOUT_MS',
            logFile: spec.logFile,
            logTail: await tailFile(spec.logFile),
          },
        );
      }
      await sleep(interval);
    }
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`. Idempotent; resolves once the process is gone. */
  stop(graceMs = 10_000): Promise<void> {
    this.stopping ??= (async () => {
      if (!this.alive) {
        this.state = 'stopped';
        return;
      }
      this.state = 'stopping';
      signalGroup(this.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        signalGroup(this.pid, 'SIGKILL');
      }, graceMs);
      await this.exited;
      clearTimeout(timer);
      // The leader is gone; anything it forked and left behind goes too.
      signalGroup(this.pid, 'SIGKILL');
      this.state = 'stopped';
    })();
    return this.stopping;
  }

  /** kill -9 of the whole group, for chaos tests. Resolves when the leader has exited. */
  async kill(): Promise<void> {
    signalGroup(this.pid, 'SIGKILL');
    await this.exited;
  }

  /** Exposed for tests that need to know the child's exit. */
  waitExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }

  /** The underlying handle, borrowed: callers must not stop it behind our back. */
  get handle(): ChildProcess {
    return this.child;
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // ESRCH: the group is already gone.
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const liveGroups = new Set<number>();
let watchdogChild: ChildProcess | undefined;
let exitHookInstalled = false;

/** Synchronous last resort on a normal exit of this process: nothing we started may outlive us. */
export function killAllNow(): void {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
  liveGroups.clear();
}

/** Takes a group off the watchdog's list; with none left, lets the watchdog go (it exits at once,
 * rather than outliving a clean stop) and the next start spawns another. */
function forget(pgid: number): void {
  liveGroups.delete(pgid);
  const dog = watchdogChild;
  if (!dog?.connected) return;
  dog.send({ remove: pgid });
  if (liveGroups.size === 0) {
    const exited = new Promise<void>((resolve) => {
      dog.once('exit', () => {
        resolve();
      });
    });
    retiring = retiring ? Promise.all([retiring, exited]).then(() => undefined) : exited;
    dog.disconnect();
    watchdogChild = undefined;
  }
}

let retiring: Promise<void> | undefined;

/**
 * Resolves once the watchdogs let go after the last server stopped have exited (bounded by
 * `timeoutMs`). Waiting lets this process reap them: a watchdog still running, or not yet reaped,
 * when we exit is left to init, which may take seconds.
 */
export async function watchdogsRetired(timeoutMs = 2000): Promise<void> {
  const waiting = retiring;
  if (!waiting) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    waiting,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (retiring === waiting) retiring = undefined;
}

function watchdog(): ChildProcess | undefined {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', killAllNow);
  }
  if (watchdogChild?.connected) return watchdogChild;
  const script = fileURLToPath(new URL('./watchdog.cjs', import.meta.url));
  watchdogChild = spawn(process.execPath, [script], {
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    detached: true,
  });
  watchdogChild.unref();
  // The IPC channel must not keep this process alive either.
  (watchdogChild.channel as { unref?: () => void } | null | undefined)?.unref?.();
  for (const pgid of liveGroups) watchdogChild.send({ add: pgid });
  return watchdogChild;
}
