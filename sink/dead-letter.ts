/** The dead-letter topic: the original record (key, value, headers) plus where it came from and why
 * it failed, as `cqrs-dlt-*` headers. */
import type { Producer } from 'kafkajs';
import { PipelineError } from '../schemas/errors.js';
import type { DeadLetter, DeadLetterPublisher } from './ports.js';

export const DLT_HEADERS = {
  topic: 'cqrs-dlt-original-topic',
  partition: 'cqrs-dlt-original-partition',
  offset: 'cqrs-dlt-original-offset',
  errorKind: 'cqrs-dlt-error-kind',
  errorMessage: 'cqrs-dlt-error-message',
  attempts: 'cqrs-dlt-attempts',
  firstFailedAt: 'cqrs-dlt-first-failed-at',
  aggregate: 'cqrs-dlt-aggregate',
} as const;

export function dltHeaders(l: DeadLetter): Record<string, string> {
  const r = l.record;
  return {
    ...r.headers,
    [DLT_HEADERS.topic]: r.topic,
    [DLT_HEADERS.partition]: String(r.partition),
    [DLT_HEADERS.offset]: r.offset,
    [DLT_HEADERS.errorKind]: l.errorCode,
    [DLT_HEADERS.errorMessage]: l.errorMessage.slice(0, 4000),
    [DLT_HEADERS.attempts]: String(Math.max(1, r.attempts)),
    [DLT_HEADERS.firstFailedAt]: (r.firstFailedAt ?? r.heldAt).toISOString(),
    [DLT_HEADERS.aggregate]: `${r.aggregateType}/${r.aggregateId}`,
  };
}

export class KafkaDeadLetterPublisher implements DeadLetterPublisher {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  async publish(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    try {
      await this.producer.send({
        topic: this.topic,
        acks: -1,
        messages: letters.map((l) => ({
          key: l.record.aggregateId,
          value: l.record.value,
          headers: dltHeaders(l),
        })),
      });
    } catch (cause) {
      throw new PipelineError(
        'broker_unavailable',
        `cannot write to the dead-letter topic ${this.topic}`,
        {
          retriable: true,
          cause,
          context: { topic: this.topic },
        },
      );
    }
  }
}
