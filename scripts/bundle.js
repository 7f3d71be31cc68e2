// Bundles src/main.ts into one CommonJS file for the SEA executable.
// ssh2's optional native parts (sshcrypto.node, cpu-features) cannot be required inside a SEA; they are
// replaced by stubs that throw, which ssh2 catches and answers with its pure-JS/Node-crypto paths
// (measured on the emulated DPU: the SSH step costs the same within noise, ~65-75 ms either way).
const fs = require('node:fs');
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

/** The hash the daemon checks its netlink addon (the SEA asset build/rtnetlink.node) against before loading it. */
function rtnetlinkSha256() {
  const file = 'build/rtnetlink.node.sha256';
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
}

const outfile = process.argv[2] ?? 'build/dpu-overlay.cjs';

/**
 * The SEA hands its main script to V8 as UTF-8: one non-ASCII character anywhere (an em dash in a dependency's
 * comment) makes V8 decode the whole bundle into a two-byte string on every start, about a fifth of the
 * instructions of `dpu-overlay VERSION` (callgrind). esbuild already escapes strings (charset ascii); what is left
 * is in comments, where the escape is just text. In a string, regexp or template the \u escape means the same.
 */
function asciiOnly(file) {
  const text = fs.readFileSync(file, 'utf8');
  const escaped = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (escaped !== text) fs.writeFileSync(file, escaped);
}

esbuild
  .build({
    entryPoints: ['src/main.ts'],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    charset: 'ascii',
    define: { __DPU_OVERLAY_VERSION__: JSON.stringify(version), __RTNETLINK_SHA256__: JSON.stringify(rtnetlinkSha256()) },
    plugins: [optionalNative],
    logLevel: 'warning',
  })
  .then(() => asciiOnly(outfile))
  .catch(() => process.exit(1));
