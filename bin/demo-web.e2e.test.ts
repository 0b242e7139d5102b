import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from '@jest/globals';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Packs the repository (what `npm publish` would ship) and installs the tarball into an empty app. */
function installPackedPackage(): string {
  const work = mkdtempSync(path.join(tmpdir(), 'cqrs-demo-web-'));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', work], {
    cwd: repo,
    stdio: 'pipe',
  });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  expect(tarball).toBeDefined();
  const app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({
      name: 'demo-web-app',
      private: true,
      type: 'module',
      dependencies: { 'cqrs-sync': `file:${path.join(work, tarball ?? '')}` },
    }),
  );
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--silent'], {
    cwd: app,
    stdio: 'pipe',
    timeout: 300_000,
  });
  return app;
}

// The bin offers `demo-web`, so the packed package must run it: from an empty directory (the demo
// has its own domain, so no config module of the user's), help first, then the app with its page.
it('runs `cqrs-sync demo-web` from the packed package: help, then the app serving its page', async () => {
  const app = installPackedPackage();

  const help = spawnSync('npx', ['--no-install', 'cqrs-sync', 'demo-web', '--help'], {
    cwd: app,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (help.status !== 0) console.error(help.stdout, help.stderr);
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/^Usage: cqrs-sync demo-web/);

  const s = testServers();
  const child = spawn(path.join(app, 'node_modules', '.bin', 'cqrs-sync'), ['demo-web'], {
    cwd: app,
    env: {
      ...process.env,
      MONGODB_URI: s.mongodbUri,
      MYSQL_URL: s.mysqlUrl,
      KAFKA_BROKERS: s.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: s.schemaRegistryUrl,
      RELAY_OUTBOX_DATABASE: uniqueName('demo_web'),
      SINK_GROUP_ID: uniqueName('demo-web'),
      DEMO_HOST: '127.0.0.1',
      DEMO_PORT: '0',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (d: Buffer): void => {
    out += d.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', resolve);
  });
  try {
    const url = await waitFor(
      'the demo web app to log its url',
      () => /"url":"(http:\/\/[^"]+)"[^\n]*demo web app listening/.exec(out)?.[1],
      { timeoutMs: 60_000 },
    );
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    // The static files are packed beside the compiled app and found there.
    const script = await fetch(`${url}/app.js`);
    expect(script.status).toBe(200);
  } catch (e) {
    console.error(out);
    throw e;
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
}, 600_000);
