/** What the `cqrs-sync` bin reads from its environment. Each process reads its own settings in its
 * own config.ts (relay/config.ts, sink/config.ts). */
export interface BinEnv {
  /** `CQRS_SYNC_CONFIG`: the user's config module; default `./cqrs-sync.config.ts`. */
  readonly configFile: string;
}

export function loadBinEnv(env: NodeJS.ProcessEnv = process.env): BinEnv {
  return { configFile: env.CQRS_SYNC_CONFIG ?? 'cqrs-sync.config.ts' };
}
