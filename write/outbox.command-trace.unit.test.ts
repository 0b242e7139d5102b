import { describe, expect, it } from '@jest/globals';
import { commandTraceContext } from './outbox.js';

const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('commandTraceContext', () => {
  it('keeps a well-formed traceparent and tracestate from the command input', () => {
    expect(commandTraceContext({ traceparent, tracestate: 'vendor=1' })).toEqual({
      traceparent,
      tracestate: 'vendor=1',
    });
    expect(commandTraceContext({ traceparent })).toEqual({ traceparent, tracestate: null });
    expect(commandTraceContext({ traceparent: 'nope' })).toBeUndefined();
  });

  // Issue 12, D1: a lone surrogate cannot be kept as sent (MongoDB and the Kafka header store U+FFFD
  // instead). Tracing never refuses a command, so such a tracestate is dropped, not refused.
  it('drops a tracestate that is not well-formed Unicode', () => {
    expect(commandTraceContext({ traceparent, tracestate: 'v=\uD800' })).toEqual({
      traceparent,
      tracestate: null,
    });
  });
});
