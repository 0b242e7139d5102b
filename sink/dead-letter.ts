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
  /** Set when the original value was too large to copy: it stays in `cqrs_sink_held` and its topic. */
  valueOmitted: 'cqrs-dlt-value-omitted',
} as const;

/** Per produce request, well under the broker's default 1 MB request and message limits. */
const REQUEST_BYTES = 512 * 1024;
/** A value larger than this is not copied to the dead-letter topic (it could never be written). */
const MAX_VALUE_BYTES = 256 * 1024;

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
    // Many large poison records in one batch must not make one request the broker refuses: that
    // would be retried forever and stall the partition.
    const messages = letters.map((l) => {
      const value = l.record.value;
      const omit = value !== null && value.length > MAX_VALUE_BYTES;
      const headers = dltHeaders(l);
      if (omit) headers[DLT_HEADERS.valueOmitted] = `${value.length} bytes`;
      return { key: l.record.aggregateId, value: omit ? null : value, headers };
    });
    const requests: (typeof messages)[] = [];
    let current: typeof messages = [];
    let bytes = 0;
    for (const m of messages) {
      const size =
        (m.value?.length ?? 0) +
        Object.entries(m.headers).reduce((n, [k, v]) => n + k.length + Buffer.byteLength(v), 0);
      if (current.length > 0 && bytes + size > REQUEST_BYTES) {
        requests.push(current);
        current = [];
        bytes = 0;
      }
      current.push(m);
      bytes += size;
    }
    requests.push(current);
    try {
      for (const batch of requests) {
        await this.producer.send({ topic: this.topic, acks: -1, messages: batch });
      }
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
