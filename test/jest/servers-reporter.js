// @ts-check
/**
 * Closes every run with what it ran against: one line a server (real or stand-in, and its version),
 * then the tests that did not run for want of a prerequisite (chromium, Docker Compose), by name and
 * why, then any other skipped test by name. Nothing passes silently.
 */
/** Keep in step with test/support/requires.ts: a title ends `[not run: <reason>]`. */
const NOT_RUN = /\s*\[not run: (.*)\]\s*$/;

export default class ServersReporter {
  /** @param {unknown} _contexts @param {{ testResults: { testResults: { title: string, fullName: string, status: string }[] }[] }} results */
  onRunComplete(_contexts, results) {
    const missing = [];
    const otherSkips = [];
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        const skipped = t.status !== 'passed' && t.status !== 'failed';
        const name = t.fullName.replace(/\s+/g, ' ').trim();
        const lacking = NOT_RUN.exec(t.title);
        if (lacking) {
          missing.push(`${name.replace(NOT_RUN, '')} (${lacking[1]})`);
        } else if (skipped) {
          otherSkips.push(name);
        }
      }
    }
    const out = ['', 'servers used by this run:'];
    for (const line of (
      process.env.CQRS_SYNC_SERVER_LINES ?? 'none started (unit tests only)'
    ).split('\n')) {
      out.push(`  ${line}`);
    }
    out.push(
      missing.length === 0
        ? 'not run: 0 tests (every prerequisite was present)'
        : `not run: ${missing.length} tests: ${missing.join('; ')}`,
    );
    if (otherSkips.length > 0)
      out.push(`skipped: ${otherSkips.length} tests: ${otherSkips.join('; ')}`);
    console.log(out.join('\n'));
  }
}
