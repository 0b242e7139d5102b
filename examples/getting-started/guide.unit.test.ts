import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from '@jest/globals';

const here = path.dirname(fileURLToPath(import.meta.url));
const guide = readFileSync(path.resolve(here, '../../docs/getting-started.md'), 'utf8');

function exampleSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : exampleSources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [readFileSync(p, 'utf8')] : [];
  });
}

// docs/getting-started.md promises that every snippet is taken from the example's files.
it('every TypeScript snippet in docs/getting-started.md stands verbatim in the example', () => {
  const snippets = [...guide.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  expect(snippets.length).toBeGreaterThanOrEqual(8);
  const sources = exampleSources(here);
  const drifted = snippets.filter((s) => !sources.some((src) => src.includes(s)));
  expect(drifted).toEqual([]);
});
