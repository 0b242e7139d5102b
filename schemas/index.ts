export * from './catalog.js';
export * from './codec.js';
export * from './envelope.js';
export * from './errors.js';
export * from './registry.js';
export * from './well-formed.js';
export * from './avro-types.js';
