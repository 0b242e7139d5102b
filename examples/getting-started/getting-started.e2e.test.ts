import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from '@jest/globals';
import mysql from 'mysql2/promise';
import { testServers, uniqueName } from '../../test/support/servers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

// The documented path is the tested path: the example, copied out of the repository, installs the
// packed package (what `npm publish` would ship) and runs end to end on the local servers.
it('runs the getting-started example from the packed package', async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'cqrs-getting-started-'));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', work], {
    cwd: repo,
    stdio: 'pipe',
  });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  expect(tarball).toBeDefined();

  const app = path.join(work, 'app');
  cpSync(here, app, {
    recursive: true,
    filter: (src) => !src.includes('node_modules') && !src.endsWith('.test.ts'),
  });
  const pkgFile = path.join(app, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { dependencies: Record<string, string> };
  pkg.dependencies['cqrs-sync'] = `file:${path.join(work, tarball ?? '')}`;
  writeFileSync(pkgFile, JSON.stringify(pkg, null, 2));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--silent'], {
    cwd: app,
    stdio: 'pipe',
    timeout: 300_000,
  });

  // The installed package: every subpath resolves, and the domain entry loads no driver (the
  // drivers are CommonJS, so a loaded one is in require.cache).
  const check = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module';
       const domain = await import('cqrs-sync');
       const drivers = Object.keys(createRequire(import.meta.url).cache).filter((f) =>
         /[\\/]node_modules[\\/](kafkajs|mysql2|mongodb)[\\/]/.test(f));
       for (const sub of ['mongodb', 'relay', 'sink', 'ops']) await import('cqrs-sync/' + sub);
       console.log(JSON.stringify({ domain: typeof domain.AggregateRoot, drivers }));`,
    ],
    { cwd: app, encoding: 'utf8' },
  );
  expect(JSON.parse(check)).toEqual({ domain: 'function', drivers: [] });

  const s = testServers();
  const database = uniqueName('getting_started');
  const admin = await mysql.createConnection(s.mysqlUrl);
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const mysqlUrl = s.mysqlUrl.replace(/\/[^/?]*(\?|$)/, `/${database}$1`);

  const run = spawnSync('npm', ['start', '--silent'], {
    cwd: app,
    encoding: 'utf8',
    timeout: 180_000,
    env: {
      ...process.env,
      MYSQL_URL: mysqlUrl,
      MYSQL_SINK_URL: mysqlUrl,
      EXAMPLE_DATABASE: uniqueName('tasks'),
      SINK_GROUP_ID: uniqueName('getting-started'),
      LOG_LEVEL: 'warn',
    },
  });
  if (run.status !== 0) console.error(run.stdout, run.stderr);
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(
    /getting-started: task task-\d+ "Write the getting-started guide" is done in MySQL at version 2/,
  );
}, 600_000);
