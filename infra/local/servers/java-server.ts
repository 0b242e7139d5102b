import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTools, runToCompletion } from '../tools.js';
import type { ServerContext } from '../types.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Folder of a Maven-installed server's scripts: `infra/local/<dir>/{install,run}.sh`. */
export function scriptsDir(dir: string): string {
  return path.resolve(HERE, '..', dir);
}

/**
 * Runs `infra/local/<dir>/install.sh` (idempotent, cached under the cache folder) after checking
 * that Java and Maven are there, and returns the installed version.
 */
export async function installJavaServer(
  ctx: ServerContext,
  server: string,
  dir: string,
  tools: readonly string[] = ['java', 'mvn'],
): Promise<string> {
  requireTools(
    server,
    tools.map((cmd) => ({
      cmd,
      advice:
        cmd === 'mvn'
          ? 'install Maven (Debian: `apt-get install -y maven`)'
          : 'install a JDK 17+ (Debian: `apt-get install -y openjdk-17-jdk-headless`)',
    })),
    ctx.config.pathEnv,
  );
  await runToCompletion('bash', [path.join(scriptsDir(dir), 'install.sh')], {
    server,
    logFile: path.join(ctx.config.cacheDir, dir, 'install.log'),
    env: { CQRS_SYNC_CACHE: ctx.config.cacheDir },
    timeoutMs: ctx.config.installTimeoutMs,
    what: `installing ${server} from Maven Central`,
  });
  return readFileSync(path.join(ctx.config.cacheDir, dir, 'VERSION'), 'utf8').trim();
}
