export * from './aggregate.js';
export * from './command-handler.js';
export { DEFAULT_AGGREGATE_LIMITS, aggregateLimits, type AggregateLimits } from './limits.js';
export * from './memory-store.js';
export * from './mongo-store.js';
export * from './outbox.js';
export * from './ports.js';
export * from './repository.js';
