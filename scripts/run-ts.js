// Runs a TypeScript entry point (benchmarks, stress, harnesses) without a separate compile step:
//   node scripts/run-ts.js bench/latency.ts [args...]
// esbuild bundles it to one CommonJS file under build/run-ts/ (npm packages stay external) and node runs that,
// so the script's exit code and signals are the script's own. SIGINT/SIGTERM are passed on to the script and this
// process waits for it, so a Ctrl-C'd harness finishes its teardown before the shell (or npm) gets control back.
const esbuild = require('esbuild');
const path = require('node:path');
const { spawn } = require('node:child_process');

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.js <entry.ts> [args...]');
  process.exit(2);
}
const outfile = path.join(__dirname, '..', 'build', 'run-ts', `${path.basename(entry, '.ts')}.cjs`);
esbuild.buildSync({ entryPoints: [entry], bundle: true, platform: 'node', target: 'node20', format: 'cjs', packages: 'external', outfile, logLevel: 'warning' });
const child = spawn(process.execPath, [outfile, ...args], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 1);
});
