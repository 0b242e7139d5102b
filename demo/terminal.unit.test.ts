import { describe, expect, it } from '@jest/globals';
import { listenProblem, terminalLine } from './terminal.js';

describe('what the demo shows in the terminal', () => {
  // Reported: every start printed 3-6 raw JSON kafkajs lines ("This server does not host this
  // topic-partition"), the broker's transient answers that kafkajs retries.
  it('leaves kafkajs lines to demo.log and shows the pipeline’s own errors as one readable line', () => {
    const kafkajs = JSON.stringify({
      level: 50,
      component: 'kafkajs',
      clientId: 'cqrs-sync-sink',
      error: 'This server does not host this topic-partition',
      msg: 'Response Metadata(key: 3, version: 6)',
    });
    expect(terminalLine(`${kafkajs}\n`)).toBeUndefined();
    const sink = JSON.stringify({
      level: 50,
      component: 'sink',
      err: { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:3306', stack: 'Error: …' },
      msg: 'batch failed, retrying',
    });
    expect(terminalLine(`${sink}\n`)).toBe(
      'error [sink] batch failed, retrying: connect ECONNREFUSED 127.0.0.1:3306 (details in demo.log)\n',
    );
    expect(terminalLine(JSON.stringify({ level: 60, msg: 'boom' }))).toBe(
      'fatal [demo] boom (details in demo.log)\n',
    );
    expect(terminalLine('not json')).toBe('not json\n');
  });

  // Reported: with port 3000 taken the demo failed after ~23 s with a raw EADDRINUSE stack.
  it('names DEMO_PORT and how to choose another when the port is taken', () => {
    const taken = listenProblem('127.0.0.1', 3000, 'EADDRINUSE', false);
    expect(taken).toContain('DEMO_PORT=3000 (the default): 127.0.0.1:3000 is already in use');
    expect(taken).toContain('DEMO_PORT=3001 npm run demo');
    expect(taken).toContain('DEMO_PORT=0 picks a free one');
    expect(listenProblem('127.0.0.1', 8080, 'EADDRINUSE', true)).toMatch(/^DEMO_PORT=8080: /);
    expect(listenProblem('10.9.9.9', 3000, 'EADDRNOTAVAIL', true)).toContain(
      'DEMO_HOST=10.9.9.9: cannot listen on 10.9.9.9:3000 (EADDRNOTAVAIL)',
    );
  });
});
