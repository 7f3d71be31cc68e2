// Bundles src/main.ts into one CommonJS file for the SEA executable.
// ssh2's optional native parts (sshcrypto.node, cpu-features) cannot be required inside a SEA; they are
// replaced by stubs that throw, which ssh2 catches and answers with its pure-JS/Node-crypto paths
// (measured on the emulated DPU: the SSH step costs the same within noise, ~65-75 ms either way).
const esbuild = require('esbuild');
const { version } = require('../package.json');

const optionalNative = {
  name: 'optional-native',
  setup(build) {
    build.onResolve({ filter: /(^cpu-features$|\.node$)/ }, (args) => ({ path: args.path, namespace: 'optional-native' }));
    build.onLoad({ filter: /.*/, namespace: 'optional-native' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not bundled`)});`,
      loader: 'js',
    }));
  },
};

esbuild
  .build({
    entryPoints: ['src/main.ts'],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: process.argv[2] ?? 'build/dpu-overlay.cjs',
    define: { __DPU_OVERLAY_VERSION__: JSON.stringify(version) },
    plugins: [optionalNative],
    logLevel: 'warning',
  })
  .catch(() => process.exit(1));
