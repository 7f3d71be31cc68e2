#!/usr/bin/env bash
# Builds build/rtnetlink.node (the daemon's in-process netlink, see native/rtnetlink/rtnetlink.c) and
# build/rtnetlink.node.sha256, offline: the machine's C compiler and the headers of the node that runs this
# script (a Node.js install ships them in <prefix>/include/node; Debian's nodejs in /usr/include/node).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/rtnetlink.node}
mkdir -p "$(dirname "$out")"
prefix=$(node -p 'require("node:path").resolve(process.execPath, "../..")')
inc=
for dir in "$prefix/include/node" /usr/include/node /usr/local/include/node; do
  if [ -f "$dir/node_api.h" ]; then inc=$dir; break; fi
done
[ -n "$inc" ] || { echo "rtnetlink: no node_api.h under $prefix/include/node or /usr/include/node: install Node.js's headers" >&2; exit 1; }
cc=${CC:-$(command -v gcc || command -v cc || true)}
[ -n "$cc" ] || { echo "rtnetlink: no C compiler (gcc): install build-essential" >&2; exit 1; }
"$cc" -std=gnu11 -O2 -Wall -Wextra -fPIC -shared -fvisibility=hidden -DNODE_GYP_MODULE_NAME=rtnetlink \
  -I"$inc" -o "$out.tmp" native/rtnetlink/rtnetlink.c
mv "$out.tmp" "$out"
sha256sum "$out" | cut -d' ' -f1 > "$out.sha256"
