// Drives @yao-pkg/pkg's SEA mode with this machine's node (its CLI does not expose useLocalNode or seaConfig).
const path = require('node:path');
const sea = require('@yao-pkg/pkg/lib-es5/sea').default;

const [entry, output] = process.argv.slice(2);
sea(path.resolve(entry), {
  targets: [{ nodeRange: `node${process.versions.node.split('.')[0]}`, platform: 'linux', arch: 'x64', output: path.resolve(output) }],
  useLocalNode: true,
  seaConfig: {
    disableExperimentalSEAWarning: true, useCodeCache: true, useSnapshot: false,
    // The daemon's netlink addon (native/rtnetlink), written out and loaded by src/kernel/rtnetlink-addon.ts.
    assets: { 'rtnetlink.node': path.resolve('build/rtnetlink.node') },
  },
}).catch((err) => {
  console.error(`sea: ${err.message}`);
  process.exit(1);
});
