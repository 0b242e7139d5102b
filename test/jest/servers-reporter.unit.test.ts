import { describe, expect, it, jest } from '@jest/globals';
// @ts-expect-error -- plain ESM that jest loads as is (no declaration file)
import ServersReporter from './servers-reporter.js';

interface Result {
  title: string;
  fullName: string;
  status: string;
}

/** The reporter's closing lines for one file of results. */
function closingLines(tests: Result[]): string[] {
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    new (
      ServersReporter as new () => { onRunComplete(c: unknown, r: unknown): void }
    )().onRunComplete(undefined, { testResults: [{ testResults: tests }] });
    return String(log.mock.calls[0]?.[0]).split('\n');
  } finally {
    log.mockRestore();
  }
}

describe('servers reporter', () => {
  it('names each test skipped for want of a prerequisite, with the reason, in a not run: line', () => {
    const title = 'shows the page [not run: /usr/bin/chromium is missing]';
    const lines = closingLines([
      { title, fullName: `demo ${title}`, status: 'pending' },
      { title: 'passes', fullName: 'demo passes', status: 'passed' },
    ]);
    expect(lines).toContain('not run: 1 tests: demo shows the page (/usr/bin/chromium is missing)');
    expect(lines.some((l) => l.startsWith('skipped:'))).toBe(false);
  });

  it('says so when every prerequisite was present', () => {
    const lines = closingLines([{ title: 'passes', fullName: 'passes', status: 'passed' }]);
    expect(lines).toContain('not run: 0 tests (every prerequisite was present)');
  });

  it('lists other skipped tests apart from the not run ones', () => {
    const lines = closingLines([{ title: 'later', fullName: 'x later', status: 'todo' }]);
    expect(lines).toContain('skipped: 1 tests: x later');
  });
});
