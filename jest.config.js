/**
 * Unit tests run anywhere; e2e tests need root, netns and the packaged binary (npm run build).
 * bench/ keeps the tests of its own harness beside it (*.test.ts unit, *.e2e.test.ts end to end), so test/ never imports bench/.
 * e2e-daemon runs the suites that drive ADD/DEL/CHECK/GC/STATUS through the plugin a second time on the daemon path
 * (DPUO_PLUGIN_PATH=daemon: a daemon per emulated host, every config naming its socket). Not in it: daemon.test.ts and
 * dpu-recovery.test.ts (about the daemon, with daemons of their own, already on both paths), ovn-testbed.test.ts (the
 * testbed only, no plugin), daemon-exec.test.ts (both paths by itself), processes.test.ts (counts the standalone
 * plugin's children) and bench/ (measures each path by itself).
 */
const tsJest = ['ts-jest', { diagnostics: false }];
// ES-module-only dependencies (execa 9) go through esbuild; everything else in node_modules is left alone.
const esmDeps = { transform: { '^.+\\.ts$': tsJest, '/node_modules/.+\\.js$': '<rootDir>/test/esm-to-cjs.js' }, transformIgnorePatterns: [],
  // unicorn-magic (under execa) exports an "import" condition only, which jest's CommonJS resolver does not take.
  moduleNameMapper: { '^unicorn-magic$': '<rootDir>/node_modules/unicorn-magic/node.js' },
  // signal-exit (under execa) keeps a counter on process; jest 30's globals protection recurses on it.
  testEnvironmentOptions: { globalsCleanup: 'off' } };
const BOTH_PATHS = [
  'conformance', 'overlay', 'ifname', 'guard-and-chaining', 'multi-dpu', 'ovn', 'dpu-vf-settings', 'dpu-ownership',
  'libcni-multus', 'libcni-multus-ovn', 'podman', 'podman-ovn', 'containerd', 'stress', 'underlay-membership', 'underlay-ipv6',
];
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
    {
      displayName: 'e2e-daemon',
      testMatch: BOTH_PATHS.map((f) => `<rootDir>/test/e2e/${f}.test.ts`),
      setupFiles: ['<rootDir>/test/testkit/daemon-path.setup.ts'],
      ...esmDeps,
      testEnvironment: 'node',
    },
  ],
};
