/** `cqrs-sync/relay`: the relay, from code or as `cqrs-sync relay` (loads mongodb and kafkajs). */
export { startRelay, type StartRelayOptions } from './start.js';
export { relayCli } from './cli.js';
export { loadRelayConfig, relayCollections, type RelayConfig } from './config.js';
export type { RelayHandle, RelayRole, RelayState, RelayStats } from './relay.js';
