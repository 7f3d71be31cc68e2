/**
 * Unit tests run anywhere; e2e tests need root, netns and the packaged binary (npm run build).
 * bench/ keeps the tests of its own harness beside it (*.test.ts unit, *.e2e.test.ts end to end), so test/ never imports bench/.
 */
const tsJest = ['ts-jest', { diagnostics: false }];
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/bench/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.e2e\\.test\\.ts$'],
      transform: { '^.+\\.ts$': tsJest },
      testEnvironment: 'node',
    },
    {
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts', '<rootDir>/bench/**/*.e2e.test.ts'],
      transform: { '^.+\\.ts$': tsJest },
      testEnvironment: 'node',
    },
  ],
};
