/** Issue 16: `import { AggregateRoot } from 'cqrs-sync'` loaded kafkajs, mysql2 and mongodb. The
 * domain entry must load no driver; each child is a fresh node process, so nothing is cached. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from '@jest/globals';

const root = path.dirname(fileURLToPath(import.meta.url));
const DRIVERS = ['kafkajs', 'mysql2', 'mongodb'];

// The drivers are CommonJS packages: once imported, from ESM too, their files are in require.cache.
const script = `
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
let exports = 0;
for (const file of process.argv.slice(1)) exports += Object.keys(await import(pathToFileURL(file).href)).length;
const packages = new Set();
for (const file of Object.keys(createRequire(import.meta.url).cache)) {
  const m = /[\\\\/]node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/.exec(file);
  if (m) packages.add(m[1].replace(/\\\\/g, '/'));
}
console.log(JSON.stringify({ exports, packages: [...packages].sort() }));
`;

function load(...entries: string[]): { exports: number; packages: string[] } {
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
      ...entries.map((e) => path.join(root, e)),
    ],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  );
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
    exports: number;
    packages: string[];
  };
}

it('the domain entry (cqrs-sync) loads no database or broker driver', () => {
  const got = load('index.ts');
  expect(got.exports).toBeGreaterThan(10);
  expect(got.packages.filter((p) => DRIVERS.includes(p))).toEqual([]);
});

it('the relay and sink entries do load theirs (so the check above can see a driver)', () => {
  expect(load('relay/index.ts', 'sink/index.ts').packages).toEqual(expect.arrayContaining(DRIVERS));
});
