#!/usr/bin/env bash
# The demo: two emulated hosts with their DPUs; the packaged plugin attaches a container on each to VNI 100,
# the containers talk through the DPUs' VXLAN tunnels; prints what happened. --keep leaves it all up.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
[ -x dist/dpu-overlay ] || npm run build
bin=$PWD/dist/dpu-overlay
tb=test/testkit/testbed.sh

bash $tb up --sites a,b --vfs 4 >&2
env_json=$(bash $tb env)
get() { node -e "const e=JSON.parse(process.argv[1]); const s=e.sites.find(x=>x.name===process.argv[2]); console.log(eval(process.argv[3]))" "$env_json" "$1" "$2"; }
state=$(node -e "console.log(JSON.parse(process.argv[1]).stateDir)" "$env_json")

conf() { # site, range start, range end
  node -e '
    const [envJson, name, start, end] = process.argv.slice(1);
    const e = JSON.parse(envJson); const s = e.sites.find((x) => x.name === name);
    console.log(JSON.stringify({
      cniVersion: "1.0.0", name: "demo-vni100", type: "dpu-overlay", vni: 100, pf: s.pf, mtu: 1450,
      sysfsRoot: s.sysfsRoot, stateDir: `${e.stateDir}/plugin-${name}`, logFile: `${e.stateDir}/plugin-${name}.log`,
      ipam: { type: "host-local", subnet: "10.100.0.0/24", rangeStart: start, rangeEnd: end, dataDir: `${e.stateDir}/ipam-${name}` },
      // daemonSocket "": a host daemon (install.sh under systemd) sits in the root netns, not in the emulated host.
      dpu: { host: s.dpuHost, privateKeyFile: e.privateKeyFile, knownHostsFile: e.knownHostsFile, datapathType: "netdev", localVtep: s.localVtep, remoteVteps: s.remoteVteps, daemonSocket: "" },
    }));' "$env_json" "$1" "$2" "$3"
}
cni() { # command site container
  local ns=dpuo-ctr-demo-$2
  ip netns exec dpuo-host-$2 env CNI_COMMAND=$1 CNI_CONTAINERID=demo-$2 CNI_NETNS=/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$bin" < "$state/demo-$2.json" 2>>"$state/demo-plugin-stderr.log"
}
cleanup() {
  for s in a b; do cni DEL $s >/dev/null 2>&1 || true; ip netns del dpuo-ctr-demo-$s 2>/dev/null || true; done
  bash $tb down >&2
}
$keep || trap cleanup EXIT

conf a 10.100.0.10 10.100.0.19 > "$state/demo-a.json"
conf b 10.100.0.20 10.100.0.29 > "$state/demo-b.json"
echo "== dpu-overlay $($bin --version | cut -d' ' -f2) demo: two hosts, two DPUs, VNI 100 =="
for s in a b; do
  ip netns del dpuo-ctr-demo-$s 2>/dev/null || true
  ip netns add dpuo-ctr-demo-$s
  t0=$(date +%s%N)
  result=$(cni ADD $s)
  t1=$(date +%s%N)
  ip=$(node -e "console.log(JSON.parse(process.argv[1]).ips[0].address)" "$result")
  mac=$(node -e "console.log(JSON.parse(process.argv[1]).interfaces[0].mac)" "$result")
  echo "host $s: ADD took $(( (t1 - t0) / 1000000 )) ms -> container eth0 $ip (mac $mac), VF moved in, representor plugged on DPU $s"
  eval "ip_$s=${ip%/*}"
done
steps=$(grep '"ADD done"' "$state/plugin-a.log" | tail -1 | node -e "const l=JSON.parse(require('fs').readFileSync(0,'utf8')); console.log(Object.entries(l.steps).map(([k,v])=>k+' '+v+' ms').join(', '))")
echo "ADD steps on host a: $steps"
echo
echo "== ping from host a's container to host b's container (through DPU a -> VXLAN -> DPU b) =="
ip netns exec dpuo-ctr-demo-a ping -c 3 -i 0.2 "$ip_b" | tail -2
echo
echo "== TCP throughput, 3 s of iperf3 (userspace OVS in the emulation; a real DPU does this in the eSwitch) =="
ip netns exec dpuo-ctr-demo-b iperf3 -s -1 -D
sleep 0.3
ip netns exec dpuo-ctr-demo-a iperf3 -c "$ip_b" -t 3 -f m | grep -E "receiver" | sed 's/^\[ *[0-9]*\] *//'
echo
for s in a b; do
  echo "== OVS on DPU $s =="
  bash $tb dpu-exec $s ovs-vsctl show | awk '/^    Bridge/ { show = ($2 == "br-vni100") } show'
done
if $keep; then
  cat <<HELP

The testbed is still up. Poke at it:
  ip netns exec dpuo-ctr-demo-a ping $ip_b
  bash $tb dpu-exec a ovs-vsctl show
  bash $tb dpu-exec a ovs-appctl fdb/show br-vni100
  less $state/plugin-a.log
Tear down: for s in a b; do ip netns del dpuo-ctr-demo-\$s; done; bash $tb down
HELP
fi
