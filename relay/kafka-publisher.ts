import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import type { EventPublisher, OutgoingRecord } from './ports.js';
import { createTopicsAndWait } from '../ops/topics.js';

export interface KafkaPublisherOptions {
  readonly topicPartitions: number;
  readonly topicReplicationFactor: number;
  readonly minCompactionLagMs: number;
  readonly sendTimeoutMs: number;
  readonly logger: Logger;
}

/**
 * Publishes with an idempotent producer (`maxInFlightRequests: 1`, `acks: -1`), so records of one
 * key keep their order even across the producer's own retries. After a failed send the producer is
 * dropped and a new one connects on the next publish.
 */
export class KafkaPublisher implements EventPublisher {
  private producer: Promise<Producer> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: KafkaPublisherOptions,
  ) {}

  async ensureTopics(topics: readonly string[]): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const created = await createTopicsAndWait(
        admin,
        topics.map((topic) => ({
          topic,
          numPartitions: this.options.topicPartitions,
          replicationFactor: this.options.topicReplicationFactor,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'min.compaction.lag.ms', value: String(this.options.minCompactionLagMs) },
          ],
        })),
      );
      if (created.length > 0) {
        this.options.logger.info({ topics: created }, 'topics created (compacted)');
      }
    } catch (e) {
      throw brokerError(e, 'creating topics');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async publish(records: readonly OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    const byTopic = new Map<
      string,
      { key: string; value: Buffer; headers: Record<string, string> }[]
    >();
    for (const r of records) {
      let list = byTopic.get(r.topic);
      if (!list) byTopic.set(r.topic, (list = []));
      list.push({ key: r.key, value: r.value, headers: { ...r.headers } });
    }
    let producer: Producer;
    try {
      producer = await this.connected();
      await producer.sendBatch({
        acks: -1,
        timeout: this.options.sendTimeoutMs,
        compression: CompressionTypes.None,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    } catch (e) {
      await this.dropProducer();
      throw brokerError(e, `publishing ${records.length} records`);
    }
  }

  async close(): Promise<void> {
    await this.dropProducer();
  }

  private connected(): Promise<Producer> {
    this.producer ??= (async () => {
      const p = this.kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      await p.connect();
      return p;
    })();
    const current = this.producer;
    current.catch(() => {
      if (this.producer === current) this.producer = undefined;
    });
    return current;
  }

  private async dropProducer(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (p) await p.then((x) => x.disconnect()).catch(() => undefined);
  }
}

function brokerError(e: unknown, what: string): PipelineError {
  if (isPipelineError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new PipelineError('broker_unavailable', `${what} failed: ${message}`, {
    retriable: true,
    cause: e,
  });
}
