// @ts-check
/** Three projects, one per test kind (the kind is in the file name). Servers start once per run, in
 * the globalSetup of the int and e2e projects, so a unit-only run starts none. */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];
// Server projects share one stack: the second globalSetup of a run finds it started.
const servers = {
  globalSetup: '<rootDir>/test/jest/global-setup.js',
  globalTeardown: '<rootDir>/test/jest/global-teardown.js',
};
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

/** @type {import('jest').Config} */
export default {
  reporters: ['default', '<rootDir>/test/jest/servers-reporter.js'],
  coverageProvider: 'v8',
  collectCoverageFrom: [
    '{write,relay,sink,schemas,ops,verify,infra,bin}/**/*.ts',
    '!**/*.test.ts',
    // No executable code of their own: port interfaces, the entry points' re-exports, child-process entry points
    // (they run in children, where coverage is not collected) and fixtures.
    '!**/ports.ts',
    '!{relay,sink,ops,verify}/index.ts',
    '!write/mongodb.ts',
    '!**/testing-child.ts',
    '!**/fixtures/**',
    '!infra/local/cli.ts',
    '!infra/local/docker.ts',
  ],
  coverageReporters: ['text-summary', 'lcov'],
  // The pipeline's own folders hold 90% of lines (each folder as a whole); the rest 80%.
  coverageThreshold: {
    global: { lines: 80, statements: 80, functions: 80, branches: 70 },
    './write/': { lines: 90, statements: 90 },
    './relay/': { lines: 90, statements: 90 },
    './sink/': { lines: 90, statements: 90 },
  },
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/*.unit.test.ts'] },
    {
      ...common,
      ...servers,
      displayName: 'int',
      testMatch: ['<rootDir>/**/*.int.test.ts'],
      slowTestThreshold: 30,
    },
    {
      ...common,
      ...servers,
      displayName: 'e2e',
      testMatch: ['<rootDir>/**/*.e2e.test.ts'],
      slowTestThreshold: 60,
    },
  ],
  testTimeout: 120_000,
  maxWorkers: 2,
};
