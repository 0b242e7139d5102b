import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { loadHarnessConfig } from './config.js';
import { isHarnessError } from './errors.js';
import { tailFile } from './logs.js';
import { assertPortFree, choosePort, freePort, isPortFree } from './ports.js';
import { ManagedProcess, type ProcessSpec } from './process.js';
import { installJavaServer } from './servers/java-server.js';
import { startMariaDb } from './servers/mariadb.js';
import { runToCompletion } from './tools.js';
import { waitFor } from '../../test/support/servers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cqrs-harness-'));

function nodeServer(
  name: string,
  script: string,
  overrides: Partial<ProcessSpec> = {},
): ProcessSpec {
  return {
    server: name,
    command: process.execPath,
    args: ['-e', script],
    logFile: path.join(dir, `${name}.log`),
    ready: () => Promise.resolve(true),
    startTimeoutMs: 5_000,
    stopGraceMs: 2_000,
    pollIntervalMs: 50,
    ...overrides,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('ManagedProcess', () => {
  it('waits until the readiness probe passes, then stops the whole group on stop()', async () => {
    let probes = 0;
    const proc = await ManagedProcess.start(
      nodeServer(
        'sleeper',
        // Forks a grandchild to check that stop() takes the whole process group.
        "require('child_process').spawn(process.execPath, ['-e', 'setInterval(()=>{}, 1000)'], {stdio: 'inherit'}); console.log('up'); setInterval(() => {}, 1000)",
        { ready: () => Promise.resolve(++probes >= 3) },
      ),
    );
    expect(proc.state).toBe('running');
    expect(probes).toBe(3);
    expect(alive(proc.pid)).toBe(true);
    await Promise.all([proc.stop(), proc.stop()]); // idempotent
    expect(proc.state).toBe('stopped');
    expect(alive(proc.pid)).toBe(false);
    // No member of the group is left (the grandchild is reaped by init, hence the bounded wait).
    await waitFor(
      'the process group to be gone',
      () => {
        try {
          process.kill(-proc.pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      { timeoutMs: 5_000 },
    );
  });

  it('reports a server that exits during start-up with its exit code and last log lines', async () => {
    const e = await caught(
      ManagedProcess.start(
        nodeServer('crasher', "console.error('FATAL: cannot bind'); process.exit(3)", {
          ready: () => Promise.resolve(false),
        }),
      ),
    );
    expect(isHarnessError(e, 'exited_early')).toBe(true);
    expect(e.message).toContain('[crasher] exited during start-up (code 3');
    expect(e.message).toContain(`log: ${path.join(dir, 'crasher.log')}`);
    expect(e.message).toContain('| FATAL: cannot bind');
  });

  it('stops a server that is not ready in time and says so, with the log', async () => {
    const spec = nodeServer(
      'slowpoke',
      "console.log('still warming up'); setInterval(() => {}, 1000)",
      {
        ready: () => Promise.reject(new Error('connection refused')),
        startTimeoutMs: 500,
      },
    );
    const started = Date.now();
    const e = await caught(ManagedProcess.start(spec));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(isHarnessError(e, 'start_timeout')).toBe(true);
    expect(e.message).toContain('[slowpoke] not ready within 500 ms; stopped it');
    expect(e.message).toContain('| still warming up');
    expect((e as unknown as { retriable: boolean }).retriable).toBe(true);
  });

  it('escalates to SIGKILL when a server ignores SIGTERM', async () => {
    // Ready once its handler is in: a fixed 200 ms wait was too short on a loaded CI machine, and
    // the SIGTERM then came before the handler and ended it.
    const spec = nodeServer(
      'stubborn',
      "process.on('SIGTERM', () => {}); console.log('ignoring SIGTERM'); setInterval(() => {}, 1000)",
      { stopGraceMs: 300 },
    );
    const proc = await ManagedProcess.start({
      ...spec,
      ready: async () => (await readFile(spec.logFile, 'utf8')).includes('ignoring SIGTERM'),
    });
    await proc.stop(300);
    const exit = await proc.waitExit();
    expect(exit.signal).toBe('SIGKILL');
  });

  it('kill() is a kill -9 of the group', async () => {
    const proc = await ManagedProcess.start(nodeServer('victim', 'setInterval(() => {}, 1000)'));
    await proc.kill();
    expect((await proc.waitExit()).signal).toBe('SIGKILL');
    expect(proc.alive).toBe(false);
  });

  it('names the command when it cannot be run at all', async () => {
    const e = await caught(
      ManagedProcess.start({ ...nodeServer('ghost', ''), command: '/nonexistent/bin/server' }),
    );
    expect(isHarnessError(e, 'prerequisite_missing')).toBe(true);
    expect(e.message).toContain('[ghost] cannot run /nonexistent/bin/server');
  });
});

describe('ports', () => {
  it('refuses a fixed port that is taken, naming the server and the port', async () => {
    const port = await freePort();
    const blocker = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      expect(await isPortFree(port)).toBe(false);
      const e = await caught(assertPortFree('mysql', port));
      expect(isHarnessError(e, 'port_in_use')).toBe(true);
      expect(e.message).toContain(`[mysql] port ${port} on 127.0.0.1 is already in use`);
      // The harness checks before it starts anything.
      const config = loadHarnessConfig({
        CQRS_SYNC_MYSQL_PORT: String(port),
        CQRS_SYNC_RUN_DIR: path.join(dir, 'port-run'),
        PATH: process.env.PATH,
      });
      const e2 = await caught(startMariaDb({ config, log: () => undefined }));
      expect(isHarnessError(e2, 'port_in_use')).toBe(true);
    } finally {
      blocker.close();
    }
    expect(await choosePort('mysql', port)).toBe(port);
  });
});

describe('installs', () => {
  it('stops with the server name and the log tail when a command fails', async () => {
    const logFile = path.join(dir, 'failing-install.log');
    const e = await caught(
      runToCompletion(
        'bash',
        ['-c', 'echo "resolving artifacts"; echo "403 Forbidden" >&2; exit 7'],
        {
          server: 'kafka',
          logFile,
          timeoutMs: 10_000,
          what: 'installing kafka',
        },
      ),
    );
    expect(isHarnessError(e, 'install_failed')).toBe(true);
    expect(e.message).toContain('[kafka] installing kafka failed: exit code 7');
    expect(e.message).toContain('| 403 Forbidden');
  });

  it('times out a hanging install instead of waiting for ever', async () => {
    const e = await caught(
      runToCompletion('bash', ['-c', 'sleep 30'], {
        server: 'schema-registry',
        logFile: path.join(dir, 'hanging-install.log'),
        timeoutMs: 300,
        what: 'installing schema-registry',
      }),
    );
    expect(e.message).toContain(
      '[schema-registry] installing schema-registry failed: timed out after 300 ms',
    );
  });

  it('explains a missing Java or Maven before trying to install', async () => {
    const config = loadHarnessConfig({ PATH: path.join(dir, 'empty-bin'), CQRS_SYNC_CACHE: dir });
    const e = await caught(installJavaServer({ config, log: () => undefined }, 'kafka', 'kafka'));
    expect(isHarnessError(e, 'prerequisite_missing')).toBe(true);
    expect(e.message).toMatch(/\[kafka\] `(java|mvn)` is not installed\n {2}fix: install/);
  });

  it('turns a failed Maven download into a clear error with Maven’s last lines', async () => {
    // A private, empty Maven repository and a mirror that refuses connections: nothing can download.
    const settings = path.join(dir, 'unreachable-settings.xml');
    writeFileSync(
      settings,
      `<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf><url>http://127.0.0.1:9/</url></mirror></mirrors></settings>`,
    );
    const cache = mkdtempSync(path.join(tmpdir(), 'cqrs-cache-'));
    const config = loadHarnessConfig({ PATH: process.env.PATH, CQRS_SYNC_CACHE: cache });
    const previous = process.env.CQRS_SYNC_MVN_ARGS;
    process.env.CQRS_SYNC_MVN_ARGS = `-s ${settings} -Dmaven.repo.local=${path.join(cache, 'm2')}`;
    try {
      const e = await caught(
        installJavaServer({ config, log: () => undefined }, 'schema-registry', 'schema-registry'),
      );
      expect(isHarnessError(e, 'install_failed')).toBe(true);
      expect(e.message).toContain(
        '[schema-registry] installing schema-registry from Maven Central failed',
      );
      const tail = await tailFile(path.join(cache, 'schema-registry', 'install.log'), 50);
      expect(tail.join('\n')).toMatch(
        /127\.0\.0\.1:9|Connection refused|Could not transfer|resolve/i,
      );
    } finally {
      if (previous === undefined) delete process.env.CQRS_SYNC_MVN_ARGS;
      else process.env.CQRS_SYNC_MVN_ARGS = previous;
    }
  }, 120_000);
});
