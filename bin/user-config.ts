/**
 * The user's one typed config module (`cqrs-sync.config.ts`): aggregate types with their events, and
 * the projections (and read-model migrations) the sink applies. Connection settings are not here:
 * each process reads them from its environment (relay/config.ts, sink/config.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { buildCatalog, type AggregateDefinition, type Catalog } from '../schemas/catalog.js';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import type { Migration, MigrationSet } from '../sink/migrations.js';
import type { Projection } from '../sink/projection.js';
import { checkProjections } from '../sink/validate.js';

export interface CqrsSyncConfig {
  /** Aggregate types with their state and event schemas (`defineAggregate`). */
  readonly aggregates: readonly AggregateDefinition[];
  /** Prefix of default topic names; default `cqrs.`. */
  readonly topicPrefix?: string;
  /** What the sink applies (`tableProjection`, `childTableProjection`, `defineProjection`). */
  readonly projections?: readonly Projection[];
  /** Read-model migrations, applied in order by `cqrs-sync sink migrate` (a bare list gets the scope
   * `read-model` in the migrations table). */
  readonly migrations?: readonly Migration[] | MigrationSet;
}

/** Declares the config; returns it unchanged, typed. */
export function defineConfig<const C extends CqrsSyncConfig>(config: C): C {
  return config;
}

export interface LoadedConfig {
  readonly file: string;
  readonly config: CqrsSyncConfig;
  readonly catalog: Catalog;
}

const shape = z.object({
  aggregates: z
    .array(
      z
        .object({
          type: z.string(),
          state: z.object({}).loose(),
          events: z.record(z.string(), z.unknown()),
        })
        .loose(),
    )
    .min(1),
  topicPrefix: z.string().optional(),
  projections: z.array(z.object({ name: z.string() }).loose()).optional(),
  migrations: z
    .union([
      z.array(z.object({ version: z.number().int(), name: z.string() }).loose()),
      z.object({ scope: z.string(), migrations: z.array(z.unknown()) }).loose(),
    ])
    .optional(),
});

/**
 * Loads and validates the config module (a `.ts` file through tsx, or plain JS). Every problem stops
 * start-up with what is wrong and where: the file, then the path inside it.
 */
export async function loadUserConfig(file: string): Promise<LoadedConfig> {
  const abs = path.resolve(file);
  const fail = (message: string, cause?: unknown): never => {
    throw new PipelineError('config_invalid', `${abs}: ${message}`, { retriable: false, cause });
  };
  if (!existsSync(abs)) {
    fail(
      'no such file; pass --config <file> or set CQRS_SYNC_CONFIG (default ./cqrs-sync.config.ts)',
    );
  }
  let mod: { default?: unknown };
  try {
    mod = await importModule(abs);
  } catch (e) {
    return fail(`cannot load: ${(e as Error).message}`, e);
  }
  const raw = (mod.default as { default?: unknown } | undefined)?.default ?? mod.default;
  if (raw === undefined) fail('has no default export; `export default defineConfig({ ... })`');
  const parsed = shape.safeParse(raw);
  if (!parsed.success) {
    fail(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    );
  }
  const config = raw as CqrsSyncConfig;
  let catalog: Catalog;
  try {
    catalog = buildCatalog(
      config.aggregates,
      config.topicPrefix === undefined ? {} : { topicPrefix: config.topicPrefix },
    );
  } catch (e) {
    return fail(isPipelineError(e) ? e.message : String(e), e);
  }
  if (config.projections && config.projections.length > 0) {
    try {
      checkProjections(catalog, config.projections);
    } catch (e) {
      return fail(isPipelineError(e) ? e.message : String(e), e);
    }
  }
  return { file: abs, config, catalog };
}

/** The read-model migrations as the sink takes them. */
export function migrationSetOf(config: CqrsSyncConfig): MigrationSet[] {
  const m = config.migrations;
  if (!m) return [];
  return Array.isArray(m) ? [{ scope: 'read-model', migrations: m }] : [m as MigrationSet];
}

/** Imports JS directly, and TypeScript directly where a loader is already active (tsx, jest), else
 * through tsx's loader API (the compiled bin under plain node). */
async function importModule(abs: string): Promise<{ default?: unknown }> {
  const url = pathToFileURL(abs).href;
  try {
    return (await import(url)) as { default?: unknown };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (!/\.[cm]?ts$/.test(abs) || code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw e;
    const { tsImport } = await import('tsx/esm/api');
    return (await tsImport(url, import.meta.url)) as { default?: unknown };
  }
}
