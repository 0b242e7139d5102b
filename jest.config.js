// @ts-check
/** Three projects, one per test kind (the kind is in the file name). Servers start once per run in
 * the root globalSetup, only when an int or e2e project is selected. */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

/** @type {import('jest').Config} */
export default {
  globalSetup: '<rootDir>/test/jest/global-setup.ts',
  globalTeardown: '<rootDir>/test/jest/global-teardown.ts',
  reporters: ['default', '<rootDir>/test/jest/servers-reporter.js'],
  coverageProvider: 'v8',
  collectCoverageFrom: [
    '{write,relay,sink,schemas,infra}/**/*.ts',
    '!**/*.test.ts',
    '!infra/local/cli.ts',
    '!infra/local/docker.ts',
  ],
  coverageReporters: ['text-summary', 'lcov'],
  coverageThreshold: { global: { lines: 80, statements: 80, functions: 80, branches: 70 } },
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/*.unit.test.ts'] },
    {
      ...common,
      displayName: 'int',
      testMatch: ['<rootDir>/**/*.int.test.ts'],
      slowTestThreshold: 30,
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/**/*.e2e.test.ts'],
      slowTestThreshold: 60,
    },
  ],
  testTimeout: 120_000,
  maxWorkers: 2,
};
