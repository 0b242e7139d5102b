import path from 'node:path';
import { LocalServer } from '../local-server.js';
import { choosePort } from '../ports.js';
import type { ServerContext } from '../types.js';
import { installJavaServer, scriptsDir } from './java-server.js';

/** Apicurio Registry (in-memory storage) serving the Confluent-compatible API. */
export async function startSchemaRegistry(ctx: ServerContext): Promise<LocalServer> {
  const version = await installJavaServer(ctx, 'schema-registry', 'schema-registry');
  const port = await choosePort('schema-registry', ctx.config.ports.schemaRegistry);
  const base = path.join(ctx.config.runDir, 'schema-registry');
  const url = `http://127.0.0.1:${port}/apis/ccompat/v7`;
  const spec = () => ({
    server: 'schema-registry',
    command: 'bash',
    args: [path.join(scriptsDir('schema-registry'), 'run.sh')],
    env: { PORT: String(port), DATA_DIR: base, CQRS_SYNC_CACHE: ctx.config.cacheDir },
    logFile: path.join(base, 'schema-registry.log'),
    startTimeoutMs: ctx.config.startTimeoutMs,
    stopGraceMs: ctx.config.stopGraceMs,
    ready: async () => {
      const res = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2000) });
      return res.ok;
    },
  });
  return LocalServer.launch('schema-registry', spec, ctx.config.stopGraceMs, () =>
    Promise.resolve({
      description: `Apicurio Registry ${version} (local, in-memory, Confluent API at ${url})`,
      env: { SCHEMA_REGISTRY_URL: url },
    }),
  );
}
