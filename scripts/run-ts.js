// Runs a TypeScript entry point (benchmarks, stress, harnesses) without a separate compile step:
//   node scripts/run-ts.js bench/latency.ts [args...]
// esbuild bundles it to one CommonJS file under build/run-ts/ (npm packages stay external) and node runs that,
// so the script's exit code and signals are the script's own.
const esbuild = require('esbuild');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.js <entry.ts> [args...]');
  process.exit(2);
}
const outfile = path.join(__dirname, '..', 'build', 'run-ts', `${path.basename(entry, '.ts')}.cjs`);
esbuild.buildSync({ entryPoints: [entry], bundle: true, platform: 'node', target: 'node20', format: 'cjs', packages: 'external', outfile, logLevel: 'warning' });
const r = spawnSync(process.execPath, [outfile, ...args], { stdio: 'inherit' });
if (r.signal) process.kill(process.pid, r.signal);
process.exit(r.status ?? 1);
