#!/usr/bin/env bash
# Builds dist/dpu-overlay: one self-contained linux-x64 executable (Node SEA via @yao-pkg/pkg, offline).
#   0. the daemon's netlink addon is compiled (native/rtnetlink/build.sh; a SEA asset, see src/kernel/rtnetlink-addon.ts);
#   1. esbuild bundles src/main.ts and its dependencies into one CommonJS file (a SEA can require built-ins only);
#   2. pkg --sea bakes it into this machine's own node binary (useLocalNode: nothing is downloaded);
#   3. the result is smoke-tested, because pkg ignores a failed bake and would leave a plain node binary.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p "require('./package.json').version")
mkdir -p build dist

npx tsc --noEmit
bash native/rtnetlink/build.sh build/rtnetlink.node  # before the bundle: it records the addon's hash
node scripts/bundle.js build/dpu-overlay.cjs

rm -f dist/dpu-overlay
# pkg runs "npx postject" from a temp dir; without this npx would wait for a prompt and pkg would swallow the failure.
export npm_config_yes=true
node scripts/sea.js build/dpu-overlay.cjs dist/dpu-overlay

out=$(dist/dpu-overlay --version 2>&1 || true)  # stderr too: any warning fails the build
if [ "$out" != "dpu-overlay $version" ]; then
  echo "build: smoke test failed: dist/dpu-overlay --version printed: $out" >&2
  exit 1
fi
info=$(CNI_COMMAND=VERSION dist/dpu-overlay </dev/null)
case "$info" in *'"supportedVersions"'*) ;; *) echo "build: smoke test failed: VERSION printed: $info" >&2; exit 1 ;; esac
echo "build: dist/dpu-overlay $version ($(du -h dist/dpu-overlay | cut -f1)) ok" >&2
