/**
 * The demo's config module for the `cqrs-sync` bin (`CQRS_SYNC_CONFIG=demo/cqrs-sync.config.ts`):
 * its aggregate types, the projections the sink applies and the read-model migrations. Connection
 * settings come from each process's environment.
 */
import type { CqrsSyncConfig } from '../index.js';
import { demoAggregates } from './domain/definitions.js';
import { demoMigrations, demoProjections } from './read-model/projections.js';

const config: CqrsSyncConfig = {
  aggregates: demoAggregates,
  projections: demoProjections,
  migrations: (await demoMigrations()).migrations,
};

export default config;
