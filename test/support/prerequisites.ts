/**
 * What some tests need beyond Node, Java, Maven and the servers the harness starts: a browser for the
 * demo's page and Docker Compose for the compose file. `npm test` installs what is missing where this
 * machine allows (root with apt-get; Go for Compose); a test whose prerequisite is still missing is
 * skipped and named, with the reason, in the run's closing `not run:` line. No jest here: the
 * installer runs before jest does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { aptInstall, canAptInstall, runToCompletion, which } from '../../infra/local/tools.js';

export type PrerequisiteName = 'chromium' | 'compose';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const TOOLS_DIR = path.join(ROOT, '.cache', 'tools');
const PATH_ENV = process.env.PATH ?? '';

/** Debian's chromium; playwright-core drives it and never downloads a browser. */
export const CHROMIUM = '/usr/bin/chromium';
/** The Compose version built from the Go module proxy where no Compose v2 is installed. */
export const COMPOSE_MODULE = 'github.com/docker/compose/v2/cmd@v2.29.7';
const BUILT_COMPOSE = path.join(TOOLS_DIR, 'compose', 'docker-compose');

/** How to run Compose v2 here: the docker CLI plugin, a `docker-compose` v2 on PATH, or the one
 * `npm test` built. Compose v1 (Debian's python `docker-compose`) does not count: it reads the file
 * differently. */
export function composeCommand(): readonly string[] | undefined {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    const [bin = '', ...args] = cmd;
    if (!which(bin, PATH_ENV)) continue;
    const r = spawnSync(bin, [...args, 'version', '--short'], { encoding: 'utf8' });
    if (r.status === 0 && /^v?2\./.test(r.stdout.trim())) return cmd;
  }
  // Ours says version "dev" (go install sets no version); it is COMPOSE_MODULE's.
  const built = spawnSync(BUILT_COMPOSE, ['version', '--short'], { encoding: 'utf8' });
  return built.status === 0 ? [BUILT_COMPOSE] : undefined;
}

/** Why `name` is missing here, or undefined when it is present. */
export function missingPrerequisite(name: PrerequisiteName): string | undefined {
  switch (name) {
    case 'chromium':
      return existsSync(CHROMIUM)
        ? undefined
        : `${CHROMIUM} is missing; as root \`npm test\` installs Debian's chromium, otherwise \`sudo apt-get install -y chromium\``;
    case 'compose':
      return composeCommand()
        ? undefined
        : `Docker Compose v2 is missing; \`npm test\` builds it where Go is installed, otherwise install the docker compose plugin`;
  }
}

async function install(name: PrerequisiteName, log: (line: string) => void): Promise<void> {
  const logFile = path.join(TOOLS_DIR, `${name}-install.log`);
  mkdirSync(TOOLS_DIR, { recursive: true });
  switch (name) {
    case 'chromium':
      if (!canAptInstall(PATH_ENV)) return;
      log(`prerequisites: installing Debian's chromium with apt-get (log: ${logFile})`);
      await aptInstall(['chromium'], {
        server: 'chromium',
        logFile,
        timeoutMs: 15 * 60_000,
        pathEnv: PATH_ENV,
        recommends: false,
      });
      return;
    case 'compose': {
      const go = which('go', PATH_ENV);
      if (!go) return;
      log(
        `prerequisites: building Docker Compose from ${COMPOSE_MODULE} with go (log: ${logFile})`,
      );
      const gobin = path.join(TOOLS_DIR, 'compose', 'build');
      await runToCompletion(go, ['install', COMPOSE_MODULE], {
        server: 'compose',
        logFile,
        env: { GOBIN: gobin, GOFLAGS: '-mod=mod' },
        timeoutMs: 20 * 60_000,
        what: `go install ${COMPOSE_MODULE}`,
      });
      renameSync(path.join(gobin, 'cmd'), BUILT_COMPOSE);
      return;
    }
  }
}

/** Installs every missing prerequisite this machine allows, and says what stays missing. A failed
 * install is reported, not thrown: its tests are then named as not run. */
export async function ensurePrerequisites(
  log: (line: string) => void,
): Promise<Record<PrerequisiteName, string | undefined>> {
  const result = {} as Record<PrerequisiteName, string | undefined>;
  for (const name of ['chromium', 'compose'] as const) {
    if (missingPrerequisite(name)) {
      const started = Date.now();
      try {
        await install(name, log);
      } catch (e) {
        log(
          `prerequisites: installing ${name} failed: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
      if (!missingPrerequisite(name)) {
        log(`prerequisites: ${name} installed in ${Math.round((Date.now() - started) / 1000)} s`);
      }
    }
    result[name] = missingPrerequisite(name);
    log(`prerequisites: ${name}: ${result[name] ? `missing (${result[name]})` : 'present'}`);
  }
  return result;
}
