// Builds dist/dpu-overlay's variant with a V8 startup snapshot (bench/latency/snapshot-entry.ts) through the same
// pkg --sea flow with useSnapshot on (Node ignores the code cache then), into build/bench-sea/, for the
// with/without rows of `npm run bench -- --snapshot`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT } from '../../test/testkit/testbed';

// As scripts/bundle.js: ssh2's optional native parts cannot be required inside a SEA.
const optionalNative = {
  name: 'optional-native',
  setup(b: import('esbuild').PluginBuild) {
    b.onResolve({ filter: /(^cpu-features$|\.node$)/ }, (args) => ({ path: args.path, namespace: 'optional-native' }));
    b.onLoad({ filter: /.*/, namespace: 'optional-native' }, (args) => ({ contents: `throw new Error(${JSON.stringify(`${args.path} is not bundled`)});`, loader: 'js' }));
  },
};

const SEA_SNAPSHOT = `const path = require('node:path');
const sea = require('@yao-pkg/pkg/lib-es5/sea').default;
const [entry, output] = process.argv.slice(2);
sea(path.resolve(entry), {
  targets: [{ nodeRange: 'node' + process.versions.node.split('.')[0], platform: 'linux', arch: 'x64', output: path.resolve(output) }],
  useLocalNode: true,
  seaConfig: { disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: true },
}).catch((err) => { console.error('sea: ' + err.message); process.exit(1); });
`;

/** Builds the snapshot variant (about 15 s) and smoke-tests it as scripts/build.sh does; returns its path. */
export async function snapshotBinary(log: (msg: string) => void): Promise<string> {
  const dir = join(ROOT, 'build', 'bench-sea', 'snapshot');
  const file = join(dir, 'dpu-overlay');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log('building dpu-overlay with a V8 startup snapshot (zod + the config schema)');
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  await build({
    entryPoints: [join(ROOT, 'bench', 'latency', 'snapshot-entry.ts')], bundle: true, platform: 'node', target: 'node20', format: 'cjs',
    outfile: join(dir, 'snapshot.cjs'), define: { __DPU_OVERLAY_VERSION__: JSON.stringify(version) }, plugins: [optionalNative], logLevel: 'warning',
  });
  writeFileSync(join(dir, 'sea-snapshot.js'), SEA_SNAPSHOT);
  const r = spawnSync(process.execPath, [join(dir, 'sea-snapshot.js'), join(dir, 'snapshot.cjs'), file], { cwd: ROOT, env: { ...process.env, npm_config_yes: 'true' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the snapshot variant failed: ${r.stderr.slice(-800)}`);
  const v = spawnSync(file, ['--version'], { env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
  if (v.stdout !== `dpu-overlay ${version}\n` || v.stderr !== '') throw new Error(`the snapshot variant's smoke test failed: ${v.stdout}${v.stderr}`);
  return file;
}
