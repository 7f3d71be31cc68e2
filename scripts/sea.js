// Drives @yao-pkg/pkg's SEA mode with this machine's node (its CLI does not expose useLocalNode or seaConfig).
//   node scripts/sea.js <entry.cjs> <output>              a SEA of one script (the hello-world floor of bench/)
//   node scripts/sea.js <entry.cjs> <output> --assets     dist/dpu-overlay: the entry plus PRODUCT_ASSETS
const fs = require('node:fs');
const path = require('node:path');

/** src/main.ts's bundle and its V8 code cache, loaded on demand by src/sea-main.ts (names passed in by bundle.js). */
const MAIN_ASSET = 'main.cjs';
const MAIN_CACHE_ASSET = 'main.cache';
/** The files scripts/bundle.js writes beside the entry bundle for them. */
const MAIN_FILE = 'dpu-overlay-main.cjs';
const MAIN_CACHE_FILE = 'dpu-overlay-main.cache';

/**
 * Every SEA asset of dist/dpu-overlay, name -> file (relative to the entry bundle's directory, build/): the one
 * place to add one. At run time: require('node:sea').getAsset(name).
 */
const PRODUCT_ASSETS = {
  [MAIN_ASSET]: MAIN_FILE,
  [MAIN_CACHE_ASSET]: MAIN_CACHE_FILE,
  // The daemon's netlink addon (native/rtnetlink/build.sh), written out and loaded by src/kernel/rtnetlink-addon.ts.
  'rtnetlink.node': 'rtnetlink.node',
};

/** PRODUCT_ASSETS as absolute paths (sea-config.json is read from pkg's temp dir); a missing file fails the build. */
function productAssets(dir) {
  const assets = {};
  for (const [name, file] of Object.entries(PRODUCT_ASSETS)) {
    assets[name] = path.resolve(dir, file);
    if (!fs.existsSync(assets[name])) throw new Error(`asset ${name}: ${assets[name]} is missing (scripts/bundle.js writes it)`);
  }
  return assets;
}

function buildSea(entry, output, withAssets) {
  const sea = require('@yao-pkg/pkg/lib-es5/sea').default;
  const assets = withAssets ? productAssets(path.dirname(path.resolve(entry))) : undefined;
  return sea(path.resolve(entry), {
    targets: [{ nodeRange: `node${process.versions.node.split('.')[0]}`, platform: 'linux', arch: 'x64', output: path.resolve(output) }],
    useLocalNode: true,
    // pkg spreads seaConfig into the sea-config.json it hands to `node --experimental-sea-config`
    seaConfig: { disableExperimentalSEAWarning: true, useCodeCache: true, useSnapshot: false, ...(assets ? { assets } : {}) },
  });
}

module.exports = { MAIN_ASSET, MAIN_CACHE_ASSET, MAIN_FILE, MAIN_CACHE_FILE };

if (require.main === module) {
  const [entry, output, flag] = process.argv.slice(2);
  Promise.resolve()
    .then(() => buildSea(entry, output, flag === '--assets'))
    .catch((err) => {
      console.error(`sea: ${err.message}`);
      process.exit(1);
    });
}
