/** `cqrs-sync/ops`: the operations endpoint (`/metrics`, `/healthz`, `/readyz`), the redacting
 * logger and the Kafka client factory the processes use. */
export {
  mergeRegistries,
  startOpsServer,
  type OpsServer,
  type OpsServerOptions,
  type ReadinessCheck,
} from './http.js';
export { createLogger } from './logger.js';
/** The broker connection section (`KAFKA_*`: brokers, SASL, TLS) and the kafkajs client built from it,
 * as the relay and the sink build theirs. */
export {
  createKafkaClient,
  kafkaClientOptions,
  kafkaEnvSchema,
  kafkaSettings,
  type KafkaClientOptions,
  type KafkaSettings,
} from './kafka.js';
