import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { HarnessError } from './errors.js';
import { tailFile } from './logs.js';

/** Finds an executable on `pathEnv` (plus sbin folders, where Debian puts server daemons). */
export function which(cmd: string, pathEnv: string): string | undefined {
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : undefined;
  const dirs = [...pathEnv.split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, cmd);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Fails with advice when one of `tools` is not installed. */
export function requireTools(
  server: string,
  tools: readonly { cmd: string; advice: string }[],
  pathEnv: string,
): Record<string, string> {
  const found: Record<string, string> = {};
  for (const t of tools) {
    const at = which(t.cmd, pathEnv);
    if (!at) {
      throw new HarnessError('prerequisite_missing', `\`${t.cmd}\` is not installed`, {
        server,
        retriable: false,
        advice: t.advice,
      });
    }
    found[t.cmd] = at;
  }
  return found;
}

export interface RunOptions {
  readonly server: string;
  readonly logFile: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly what: string;
}

/** Runs a command to completion with its output in `logFile`; a failure or time-out throws
 * `install_failed` with the log's last lines. */
export async function runToCompletion(
  command: string,
  args: readonly string[],
  opts: RunOptions,
): Promise<void> {
  mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(command, [...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  const result = await new Promise<{ code: number | null; error?: Error; timedOut: boolean }>(
    (resolve) => {
      const timer = setTimeout(() => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        resolve({ code: null, timedOut: true });
      }, opts.timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        resolve({ code: null, error, timedOut: false });
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, timedOut: false });
      });
    },
  );
  if (result.code === 0) return;
  const why = result.timedOut
    ? `timed out after ${opts.timeoutMs} ms`
    : result.error
      ? result.error.message
      : `exit code ${String(result.code)}`;
  throw new HarnessError('install_failed', `${opts.what} failed: ${why}`, {
    server: opts.server,
    retriable: result.timedOut,
    advice: 'read the log; a download failure needs Maven Central (or your mirror) reachable',
    logFile: opts.logFile,
    logTail: await tailFile(opts.logFile),
    cause: result.error,
  });
}

export interface AptOptions {
  readonly server: string;
  readonly logFile: string;
  readonly timeoutMs: number;
  readonly pathEnv: string;
  /** Also install what the packages recommend (default true, as a plain `apt-get install`). */
  readonly recommends?: boolean;
}

/** Whether Debian packages can be installed here without asking anyone: root, with apt-get. */
export function canAptInstall(pathEnv: string): boolean {
  return process.getuid?.() === 0 && which('apt-get', pathEnv) !== undefined;
}

/** Installs Debian packages (as root, after `apt-get update`); the output goes to `logFile`. A failure throws `install_failed` with the log's last lines. */
export async function aptInstall(packages: readonly string[], opts: AptOptions): Promise<void> {
  const aptGet = which('apt-get', opts.pathEnv);
  if (!aptGet || process.getuid?.() !== 0) {
    throw new HarnessError('prerequisite_missing', `cannot install ${packages.join(', ')}`, {
      server: opts.server,
      retriable: false,
      advice: `install them as root: \`apt-get install -y ${packages.join(' ')}\``,
    });
  }
  const run = { server: opts.server, logFile: opts.logFile, timeoutMs: opts.timeoutMs };
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await runToCompletion(aptGet, ['update', '-qq'], { ...run, env, what: 'apt-get update' });
  await runToCompletion(
    aptGet,
    [
      'install',
      '-y',
      '-qq',
      ...(opts.recommends === false ? ['--no-install-recommends'] : []),
      ...packages,
    ],
    { ...run, env, what: `apt-get install ${packages.join(' ')}` },
  );
}
