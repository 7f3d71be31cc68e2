#!/usr/bin/env bash
# Builds dist/dpu-overlay: one self-contained linux-x64 executable (Node SEA via @yao-pkg/pkg, offline).
#   1. esbuild bundles the program into CommonJS (a SEA can require built-ins only), in two parts: src/entry.ts,
#      the SEA's main script (--version, VERSION, the forwarder), and src/main.ts with the rest, a SEA asset with
#      its V8 code cache, loaded only for a standalone command or a subcommand (scripts/bundle.js);
#      The daemon's netlink addon (native/rtnetlink) is compiled first: bundle.js records its hash, sea.js adds it as
#      an asset (src/kernel/rtnetlink-addon.ts loads it);
#   2. pkg --sea bakes them into this machine's own node binary (useLocalNode: nothing is downloaded);
#   3. the result is smoke-tested on both parts, because pkg ignores a failed bake and would leave a plain node binary.
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
node scripts/sea.js build/dpu-overlay.cjs dist/dpu-overlay --assets

fail() { echo "build: smoke test failed: $*" >&2; exit 1; }
out=$(dist/dpu-overlay --version 2>&1 || true)  # stderr too: any warning fails the build
[ "$out" = "dpu-overlay $version" ] || fail "dist/dpu-overlay --version printed: $out"
info=$(env -i PATH="$PATH" CNI_COMMAND=VERSION dist/dpu-overlay </dev/null)
case "$info" in *'"supportedVersions"'*) ;; *) fail "VERSION printed: $info" ;; esac
# The main asset: a standalone ADD (no daemon socket) whose config the schema refuses answers with its CNI error,
# which only src/main.ts can give; V8 must take the code cache built for it.
smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
echo "{\"logFile\":\"$smoke/log\",\"dpu\":{\"daemonSocket\":\"\"}}" >"$smoke/node.json"
err=$(echo '{"cniVersion":"1.1.0","name":"smoke","type":"dpu-overlay"}' | env -i PATH="$PATH" DPU_OVERLAY_REQUIRE_CODE_CACHE=1 \
  DPU_OVERLAY_NODE_CONFIG="$smoke/node.json" CNI_COMMAND=ADD CNI_CONTAINERID=smoke CNI_NETNS=/proc/self/ns/net CNI_IFNAME=net1 CNI_PATH=/nonexistent \
  dist/dpu-overlay 2>&1 || true)
case "$err" in '{"cniVersion":"1.1.0","code":7,"msg":"invalid network config: vni:'*) ;; *) fail "standalone ADD printed: $err" ;; esac
grep -q '"code":7' "$smoke/log" 2>/dev/null || fail "standalone ADD did not log its config error to the node file's logFile"
help=$(DPU_OVERLAY_REQUIRE_CODE_CACHE=1 dist/dpu-overlay help status 2>&1 || true)
case "$help" in 'usage: dpu-overlay status'*) ;; *) fail "help status printed: $help" ;; esac
echo "build: dist/dpu-overlay $version ($(du -h dist/dpu-overlay | cut -f1)) ok" >&2
