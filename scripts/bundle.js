// Bundles the executable's program into CommonJS for the SEA, in two parts:
//   <out>                   src/entry.ts, the SEA's main script: --version, --help, VERSION, the forwarder;
//   <dir>/MAIN_FILE         src/main.ts (standalone CNI commands, subcommands), which the entry loads on demand
//                           (src/sea-main.ts): a function expression taking a CommonJS module's arguments;
//   <dir>/MAIN_CACHE_FILE   V8's code cache for it, made warm by scripts/code-cache.js with this node (the SEA's).
// Every call pays for loading the main script; only a standalone command or a subcommand pays for the rest.
// ssh2's optional native parts (sshcrypto.node, cpu-features) cannot be required inside a SEA; they are
// replaced by stubs that throw, which ssh2 catches and answers with its pure-JS/Node-crypto paths
// (measured on the emulated DPU: the SSH step costs the same within noise, ~65-75 ms either way).
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const esbuild = require('esbuild');
const { version } = require('../package.json');
const { MAIN_ASSET, MAIN_CACHE_ASSET, MAIN_FILE, MAIN_CACHE_FILE } = require('./sea');

const ROOT = path.join(__dirname, '..');

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

/** In the entry bundle, src/entry.ts's require('./main') gets the loader of the second bundle instead of its code. */
const mainOnDemand = {
  name: 'main-on-demand',
  setup(build) {
    build.onResolve({ filter: /^\.\/main$/ }, (args) =>
      args.importer === path.join(ROOT, 'src', 'entry.ts') ? { path: path.join(ROOT, 'src', 'sea-main.ts') } : undefined,
    );
  },
};

/**
 * The SEA hands its main script to V8 as UTF-8: one non-ASCII character anywhere (an em dash in a dependency's
 * comment) makes V8 decode the whole bundle into a two-byte string on every start, about a fifth of the
 * instructions of `dpu-overlay VERSION` (callgrind). esbuild already escapes strings (charset ascii); what is left
 * is in comments, where the escape is just text. In a string, regexp or template the \u escape means the same.
 * The main bundle, read with getAsset(name, 'utf8'), is ASCII for the same reason.
 */
function asciiOnly(file) {
  const text = fs.readFileSync(file, 'utf8');
  const escaped = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (escaped !== text) fs.writeFileSync(file, escaped);
}

/** The hash the daemon checks its netlink addon (the SEA asset build/rtnetlink.node) against before loading it. */
function rtnetlinkSha256() {
  const file = path.join(ROOT, 'build', 'rtnetlink.node.sha256');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
}

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  charset: 'ascii',
  define: { __DPU_OVERLAY_VERSION__: JSON.stringify(version), __RTNETLINK_SHA256__: JSON.stringify(rtnetlinkSha256()) },
  plugins: [optionalNative],
  logLevel: 'warning',
  metafile: true,
};

/**
 * What the forwarder must not load (test/unit/daemon-forward-deps.test.ts runs it): a split that let one of these
 * into the entry would make every call pay for it again, so it fails the build.
 */
const NOT_IN_ENTRY = /(^|\/)node_modules\/|^src\/(plugin|dpu|store|kernel|cli)\/|^src\/(log|main)\.ts$|^src\/config\/schema\.ts$/;

/** Builds the two bundles and the code cache (scripts/code-cache.js); `external` leaves npm packages out (the forwarder-deps test). */
async function bundle(outfile, { external = false, cache = !external } = {}) {
  const dir = path.dirname(outfile);
  const mainFile = path.join(dir, MAIN_FILE);
  const packages = external ? { packages: 'external' } : {};
  const [entry] = await Promise.all([
    esbuild.build({
      ...common,
      ...packages,
      entryPoints: [path.join(ROOT, 'src', 'entry.ts')],
      outfile,
      define: { ...common.define, __MAIN_ASSET__: JSON.stringify(MAIN_ASSET), __MAIN_CACHE_ASSET__: JSON.stringify(MAIN_CACHE_ASSET), __MAIN_FILE__: JSON.stringify(MAIN_FILE) },
      plugins: [...common.plugins, mainOnDemand],
    }),
    esbuild.build({
      ...common,
      ...packages,
      entryPoints: [path.join(ROOT, 'src', 'main.ts')],
      outfile: mainFile,
      // src/sea-main.ts compiles it as one script and calls it as Node calls a CommonJS module's wrapper
      banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
      footer: { js: '})' },
    }),
  ]);
  const heavy = Object.keys(entry.metafile.inputs).map((p) => path.relative(ROOT, path.resolve(ROOT, p))).filter((p) => NOT_IN_ENTRY.test(p));
  if (heavy.length) throw new Error(`the entry bundle pulls in what only src/main.ts may load: ${heavy.join(', ')}`);
  asciiOnly(outfile);
  asciiOnly(mainFile);
  if (cache) {
    const made = spawnSync(process.execPath, [path.join(__dirname, 'code-cache.js'), mainFile, path.join(dir, MAIN_CACHE_FILE)], { stdio: ['ignore', 'ignore', 'inherit'], env: { PATH: process.env.PATH } });
    if (made.status !== 0) throw new Error(`making the code cache of ${mainFile} failed (exit ${made.status})`);
  }
}

module.exports = { bundle };

if (require.main === module) {
  bundle(process.argv[2] ?? 'build/dpu-overlay.cjs').catch((err) => {
    console.error(`bundle: ${err.message}`);
    process.exit(1);
  });
}
