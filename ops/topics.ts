/**
 * Creating topics and waiting until every partition has a leader.
 *
 * kafkajs' own `waitForLeaders` retries only LEADER_NOT_AVAILABLE, but a KRaft broker answers
 * UNKNOWN_TOPIC_OR_PARTITION for a moment after CreateTopics returns (its metadata cache lags the
 * controller), and kafkajs then gives up. Both answers mean "not yet", so both are retried here.
 */
import type { Admin, ITopicConfig, Kafka } from 'kafkajs';

const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

export interface CreateTopicsOptions {
  /** How long to wait for leaders before giving up (default 30 s). */
  readonly timeoutMs?: number;
}

/**
 * Creates the topics that do not exist yet (existing ones are left as they are) and waits until all
 * the named topics have a leader on every partition. Returns the names it created.
 */
export async function createTopicsAndWait(
  admin: Admin,
  topics: readonly ITopicConfig[],
  options: CreateTopicsOptions = {},
): Promise<string[]> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) {
    // Resolves false, not throws, when another client created them first.
    await admin.createTopics({ waitForLeaders: false, timeout: timeoutMs, topics: [...missing] });
  }
  await waitForLeaders(
    admin,
    topics.map((t) => t.topic),
    timeoutMs,
  );
  return missing.map((t) => t.topic);
}

export async function waitForLeaders(
  admin: Admin,
  topics: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: [...topics] });
      const waiting = topics.filter((name) => {
        const t = meta.find((m) => m.name === name);
        return !t || t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0);
      });
      if (waiting.length === 0) return;
      last = `no leader yet for ${waiting.join(', ')}`;
    } catch (e) {
      const type = (e as { type?: unknown }).type;
      if (typeof type !== 'string' || !NOT_YET.has(type)) throw e;
      last = type;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for topic leaders (${last})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One admin client for `fn`, always disconnected. It does not retry: the start-up wait does, with
 * a log line per attempt, and a SIGTERM then finds no connect still retrying in the background. */
export async function withAdmin(kafka: Kafka, fn: (admin: Admin) => Promise<void>): Promise<void> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    await fn(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
