import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { HarnessError } from '../errors.js';
import { LocalServer } from '../local-server.js';
import { choosePort } from '../ports.js';
import { aptInstall, canAptInstall, requireTools, runToCompletion, which } from '../tools.js';
import type { ServerContext } from '../types.js';

/** The read model's database and its two accounts: an admin for migrations and tests, and the
 * sink's least-privilege account (DML on the read model only). */
export const READ_DB = 'cqrs_read';
export const ADMIN_USER = 'cqrs_admin';
export const SINK_USER = 'cqrs_sink';

const INSTALL_ADVICE =
  'install MariaDB (Debian: `sudo apt-get install -y mariadb-server`), or set MYSQL_URL to a running MySQL 8 / MariaDB';

/** Installs Debian's mariadb-server when we are root and it is missing; otherwise explains. */
async function ensureInstalled(
  ctx: ServerContext,
): Promise<{ mariadbd: string; installDb: string }> {
  const find = () => ({
    mariadbd: which('mariadbd', ctx.config.pathEnv) ?? which('mysqld', ctx.config.pathEnv),
    installDb:
      which('mariadb-install-db', ctx.config.pathEnv) ??
      which('mysql_install_db', ctx.config.pathEnv),
  });
  let found = find();
  if ((!found.mariadbd || !found.installDb) && canAptInstall(ctx.config.pathEnv)) {
    ctx.log('mysql: mariadb-server missing; installing it with apt-get');
    await aptInstall(['mariadb-server'], {
      server: 'mysql',
      logFile: path.join(ctx.config.cacheDir, 'mariadb', 'install.log'),
      timeoutMs: ctx.config.installTimeoutMs,
      pathEnv: ctx.config.pathEnv,
    });
    found = find();
  }
  if (!found.mariadbd || !found.installDb) {
    requireTools(
      'mysql',
      [
        { cmd: 'mariadbd', advice: INSTALL_ADVICE },
        { cmd: 'mariadb-install-db', advice: INSTALL_ADVICE },
      ],
      ctx.config.pathEnv,
    );
  }
  return {
    mariadbd: found.mariadbd ?? 'mariadbd',
    installDb: found.installDb ?? 'mariadb-install-db',
  };
}

export interface Accounts {
  admin: string;
  sink: string;
}

export async function startMariaDb(ctx: ServerContext): Promise<LocalServer> {
  const bins = await ensureInstalled(ctx);
  const port = await choosePort('mysql', ctx.config.ports.mysql);
  const base = path.join(ctx.config.runDir, 'mariadb');
  const dataDir = path.join(base, 'data');
  const socket = path.join(base, 'mysqld.sock');
  const logFile = path.join(base, 'mariadb.log');
  const asRoot = process.getuid?.() === 0;
  mkdirSync(base, { recursive: true });

  if (!existsSync(path.join(dataDir, 'mysql'))) {
    await runToCompletion(
      bins.installDb,
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        ...(asRoot ? ['--user=root'] : []),
      ],
      {
        server: 'mysql',
        logFile,
        timeoutMs: ctx.config.startTimeoutMs,
        what: 'mariadb-install-db',
      },
    );
  }

  const rootConn = () => mysql.createConnection({ socketPath: socket, user: 'root' });
  const spec = () => ({
    server: 'mysql',
    command: bins.mariadbd,
    args: [
      '--no-defaults',
      `--datadir=${dataDir}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${socket}`,
      `--pid-file=${path.join(base, 'mysqld.pid')}`,
      '--skip-name-resolve',
      '--skip-log-bin',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_unicode_ci',
      '--innodb-buffer-pool-size=256M',
      '--max-connections=500',
      ...(asRoot ? ['--user=root'] : []),
    ],
    logFile,
    startTimeoutMs: ctx.config.startTimeoutMs,
    stopGraceMs: ctx.config.stopGraceMs,
    ready: async () => {
      const c = await rootConn();
      try {
        await c.query('SELECT 1');
        return true;
      } finally {
        await c.end();
      }
    },
  });

  return LocalServer.launch('mysql', spec, ctx.config.stopGraceMs, async () => {
    const accounts = await provision(rootConn, path.join(base, 'accounts.json'));
    const c = await rootConn();
    const [rows] = await c.query('SELECT VERSION() AS v');
    await c.end();
    const version = ((rows as { v: string }[])[0]?.v ?? 'unknown').replace(/-MariaDB.*$/, '');
    const at = `127.0.0.1:${port}`;
    return {
      description: `MariaDB ${version} (local, ${at})`,
      env: {
        MYSQL_URL: `mysql://${ADMIN_USER}:${accounts.admin}@${at}/${READ_DB}`,
        MYSQL_SINK_URL: `mysql://${SINK_USER}:${accounts.sink}@${at}/${READ_DB}`,
      },
    };
  });
}

/** Creates the read-model database and accounts once per data directory. */
export async function provision(
  rootConn: () => Promise<mysql.Connection>,
  accountsFile: string,
  userHost = '127.0.0.1',
): Promise<Accounts> {
  if (existsSync(accountsFile)) return JSON.parse(readFileSync(accountsFile, 'utf8')) as Accounts;
  const accounts: Accounts = {
    admin: randomBytes(12).toString('hex'),
    sink: randomBytes(12).toString('hex'),
  };
  const c = await rootConn();
  try {
    for (const sql of [
      `CREATE DATABASE IF NOT EXISTS ${READ_DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
      `CREATE USER IF NOT EXISTS '${ADMIN_USER}'@'${userHost}' IDENTIFIED BY '${accounts.admin}'`,
      `GRANT ALL PRIVILEGES ON *.* TO '${ADMIN_USER}'@'${userHost}' WITH GRANT OPTION`,
      `CREATE USER IF NOT EXISTS '${SINK_USER}'@'${userHost}' IDENTIFIED BY '${accounts.sink}'`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ${READ_DB}.* TO '${SINK_USER}'@'${userHost}'`,
    ]) {
      await c.query(sql);
    }
  } catch (cause) {
    throw new HarnessError('setup_failed', 'could not create the read-model database and users', {
      server: 'mysql',
      retriable: false,
      cause,
    });
  } finally {
    await c.end();
  }
  writeFileSync(accountsFile, JSON.stringify(accounts), { mode: 0o600 });
  return accounts;
}
