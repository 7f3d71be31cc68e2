/** Unit tests run anywhere; e2e tests need root, netns and the packaged binary (npm run build). */
const tsJest = ['ts-jest', { diagnostics: false }];
module.exports = {
  projects: [
    { displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], transform: { '^.+\\.ts$': tsJest }, testEnvironment: 'node' },
    { displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'], transform: { '^.+\\.ts$': tsJest }, testEnvironment: 'node' },
  ],
};
