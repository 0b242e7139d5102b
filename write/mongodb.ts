/** `cqrs-sync/mongodb`: the MongoDB write store, over a `MongoClient` of the application's. */
export { MongoWriteStore, type MongoWriteStoreOptions } from './mongo-store.js';
export { mongoKind, type MongoKind } from './mongo-server.js';
export { connectWriteSide, type ConnectWriteSideOptions, type MongoWriteSide } from './connect.js';
