/**
 * Unit tests run anywhere; e2e tests need root, netns and the packaged binary (npm run build).
 * bench/ keeps the tests of its own harness beside it (*.test.ts unit, *.e2e.test.ts end to end), so test/ never imports bench/.
 */
const tsJest = ['ts-jest', { diagnostics: false }];
// ES-module-only dependencies (execa 9) go through esbuild; everything else in node_modules is left alone.
const esmDeps = { transform: { '^.+\\.ts$': tsJest, '/node_modules/.+\\.js$': '<rootDir>/test/esm-to-cjs.js' }, transformIgnorePatterns: [],
  // unicorn-magic (under execa) exports an "import" condition only, which jest's CommonJS resolver does not take.
  moduleNameMapper: { '^unicorn-magic$': '<rootDir>/node_modules/unicorn-magic/node.js' },
  // signal-exit (under execa) keeps a counter on process; jest 30's globals protection recurses on it.
  testEnvironmentOptions: { globalsCleanup: 'off' } };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/bench/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.e2e\\.test\\.ts$'],
      ...esmDeps,
      testEnvironment: 'node',
    },
    {
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts', '<rootDir>/bench/**/*.e2e.test.ts'],
      ...esmDeps,
      testEnvironment: 'node',
    },
  ],
};
