#!/usr/bin/env bash
# npm test: unit tests, then (as root) the end-to-end suites against the packaged binary on the emulated testbed,
# standalone and then through the daemon path.
# Ends with one "N passed, N failed" line for CI.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
status=0
npx jest --selectProjects unit --json --outputFile=build/jest-unit.json || status=1
if [ "$(id -u)" = 0 ]; then
  [ -x dist/dpu-overlay ] || npm run build || status=1
  npx jest --selectProjects e2e --runInBand --json --outputFile=build/jest-e2e.json || status=1
  # the same suites again through the daemon path (jest.config.js names them; a daemon per emulated host)
  npx jest --selectProjects e2e-daemon --runInBand --json --outputFile=build/jest-e2e-daemon.json || status=1
else
  echo "test: not root: end-to-end suites skipped (they need network namespaces, OVS and sshd)" >&2
  rm -f build/jest-e2e.json build/jest-e2e-daemon.json
fi
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of ["build/jest-unit.json", "build/jest-e2e.json", "build/jest-e2e-daemon.json"]) {
    if (!fs.existsSync(f)) continue;
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests + r.numRuntimeErrorTestSuites; skipped += r.numPendingTests;
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (passed === 0) process.exitCode = 1;
'
[ $? -eq 0 ] || status=1
exit $status
