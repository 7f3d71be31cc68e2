#!/usr/bin/env bash
# The demo: two emulated hosts with their DPUs; the packaged plugin attaches a container on each to VNI 100,
# the containers talk through the DPUs' VXLAN tunnels; prints what happened. --keep leaves it all up.
# --ovn: the same with OVN as the control plane (an OVN central, ovn-controller on each DPU, Geneve).
# The daemon path, as install.sh sets it up: one `dpu-overlay daemon` per emulated host (in its netns), which the
# network configs name in dpu.daemonSocket; the demo starts them and `testbed.sh down` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false ovn=false
for a in "$@"; do
  case $a in
    --keep) keep=true ;;
    --ovn) ovn=true ;;
    *) echo "usage: npm run demo [-- --ovn] [--keep]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
[ -x dist/dpu-overlay ] || npm run build
bin=$PWD/dist/dpu-overlay
tb=test/testkit/testbed.sh
P=${DPUO_TESTBED_PREFIX:-dpuo} # the testbed's namespace prefix

if $ovn; then bash $tb up --sites a,b --vfs 4 --ovn >&2; else bash $tb up --sites a,b --vfs 4 >&2; fi
env_json=$(bash $tb env)
get() { node -e "const e=JSON.parse(process.argv[1]); const s=e.sites.find(x=>x.name===process.argv[2]); console.log(eval(process.argv[3]))" "$env_json" "$1" "$2"; }
state=$(node -e "console.log(JSON.parse(process.argv[1]).stateDir)" "$env_json")
rm -rf "$state"/plugin-? "$state"/ipam-? "$state"/daemon-?.log
DPU_OVERLAY_BIN=$bin bash $tb daemon-start >&2

conf() { # site, range start, range end: writes the network config (demo-X.json) and the host's node file (demo-node-X.json)
  node -e '
    const fs = require("fs");
    const [envJson, name, start, end, ovn] = process.argv.slice(1);
    const e = JSON.parse(envJson); const s = e.sites.find((x) => x.name === name);
    // OVN mode: Geneve with OVN'"'"'s option takes 58 bytes, and the DPU'"'"'s encap IP is OVN config, not ours
    const dpu = ovn === "true"
      ? { host: s.dpuHost, privateKeyFile: e.privateKeyFile, knownHostsFile: e.knownHostsFile, controlPlane: "ovn", daemonSocket: s.daemonSocket }
      : { host: s.dpuHost, privateKeyFile: e.privateKeyFile, knownHostsFile: e.knownHostsFile, datapathType: "netdev", localVtep: s.localVtep, remoteVteps: s.remoteVteps, daemonSocket: s.daemonSocket };
    // the network config: what a tenant may choose (docs/security.md)
    fs.writeFileSync(`${e.stateDir}/demo-${name}.json`, JSON.stringify({
      cniVersion: "1.0.0", name: "demo-vni100", type: "dpu-overlay", vni: 100, mtu: ovn === "true" ? 1400 : 1450,
      ipam: { type: "host-local", subnet: "10.100.0.0/24", rangeStart: start, rangeEnd: end, dataDir: `${e.stateDir}/ipam-${name}` },
    }));
    // the host'"'"'s node file, root'"'"'s: host paths, PF and DPU (daemonSocket: the emulated host'"'"'s daemon)
    fs.writeFileSync(`${e.stateDir}/demo-node-${name}.json`, JSON.stringify({
      pf: s.pf, sysfsRoot: s.sysfsRoot, stateDir: `${e.stateDir}/plugin-${name}`, logFile: `${e.stateDir}/plugin-${name}.log`, dpu,
    }), { mode: 0o644 });' "$env_json" "$1" "$2" "$3" "$ovn"
}
cni() { # command site container
  local ns=$P-ctr-demo-$2
  ip netns exec $P-host-$2 env CNI_COMMAND=$1 CNI_CONTAINERID=demo-$2 CNI_NETNS=/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni DPU_OVERLAY_NODE_CONFIG="$state/demo-node-$2.json" "$bin" < "$state/demo-$2.json" 2>>"$state/demo-plugin-stderr.log"
}
cleanup() {
  for s in a b; do cni DEL $s >/dev/null 2>&1 || true; ip netns del $P-ctr-demo-$s 2>/dev/null || true; done
  bash $tb down >&2
}
$keep || trap cleanup EXIT

conf a 10.100.0.10 10.100.0.19
conf b 10.100.0.20 10.100.0.29
mode="VXLAN mesh"
$ovn && mode="OVN, Geneve"
echo "== dpu-overlay $($bin --version | cut -d' ' -f2) demo: two hosts, two DPUs, VNI 100 ($mode) =="
echo "daemon path: a dpu-overlay daemon on each host (pids $(cat "$state/daemon-a.pid") and $(cat "$state/daemon-b.pid")), the plugin hands its work to it"
for s in a b; do
  ip netns del $P-ctr-demo-$s 2>/dev/null || true
  ip netns add $P-ctr-demo-$s
  t0=$(date +%s%N)
  result=$(cni ADD $s)
  t1=$(date +%s%N)
  ip=$(node -e "console.log(JSON.parse(process.argv[1]).ips[0].address)" "$result")
  mac=$(node -e "console.log(JSON.parse(process.argv[1]).interfaces[0].mac)" "$result")
  echo "host $s: ADD took $(( (t1 - t0) / 1000000 )) ms -> container eth0 $ip (mac $mac), VF moved in, representor plugged on DPU $s"
  eval "ip_$s=${ip%/*}"
done
steps=$(cat "$state/plugin-a.log" "$state/daemon-a.log" 2>/dev/null | grep '"ADD done"' | tail -1 | node -e "const l=JSON.parse(require('fs').readFileSync(0,'utf8')); console.log(Object.entries(l.steps).map(([k,v])=>k+' '+v+' ms').join(', '))")
echo "ADD steps on host a: $steps"
served=$(node -e 'const ops=require("fs").readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(JSON.parse).filter((l)=>l.msg==="request").map((l)=>l.op); console.log(ops.length ? ops.join(", ") : "nothing (the plugin ran standalone)")' "$state/daemon-a.log")
echo "requests the daemon of host a served: $served"
echo
if $ovn; then
  # count what reaches DPU b's uplink as Geneve carrying VNI 100 (the VNI is 4 bytes into the Geneve header: 12 after the UDP header's start)
  ip netns exec $P-dpu-b nft insert rule netdev dpuo ingress udp dport 6081 @th,96,24 100 counter comment '"demo geneve vni 100"'
  echo "== ping from host a's container to host b's container (through DPU a -> Geneve -> DPU b) =="
else
  echo "== ping from host a's container to host b's container (through DPU a -> VXLAN -> DPU b) =="
fi
ip netns exec $P-ctr-demo-a ping -c 3 -i 0.2 "$ip_b" | tail -2
if $ovn; then
  echo
  echo "== on the wire: Geneve packets with VNI 100 seen on DPU b's uplink p0 (nft counter) =="
  ip netns exec $P-dpu-b nft list chain netdev dpuo ingress | grep 'demo geneve' | sed 's/^[[:space:]]*//'
  echo
  echo "== ovn-nbctl show (the OVN central) =="
  bash $tb ovn-nbctl show
fi
echo
echo "== TCP throughput, 3 s of iperf3 (userspace OVS in the emulation; a real DPU does this in the eSwitch) =="
ip netns exec $P-ctr-demo-b iperf3 -s -1 -D
sleep 0.3
ip netns exec $P-ctr-demo-a iperf3 -c "$ip_b" -t 3 -f m | grep -E "receiver" | sed 's/^\[ *[0-9]*\] *//'
echo
for s in a b; do
  echo "== OVS on DPU $s =="
  if $ovn; then
    bash $tb dpu-exec $s ovs-vsctl show | awk '/^    Bridge/ { show = ($2 == "br-int") } show'
  else
    bash $tb dpu-exec $s ovs-vsctl show | awk '/^    Bridge/ { show = ($2 == "br-vni100") } show'
  fi
done
if $keep; then
  cat <<HELP

The testbed is still up. Poke at it:
  ip netns exec $P-ctr-demo-a ping $ip_b
  bash $tb dpu-exec a ovs-vsctl show
  bash $tb dpu-exec a ovs-appctl fdb/show br-vni100
  less $state/plugin-a.log $state/daemon-a.log
Tear down (stops the daemons too): for s in a b; do ip netns del $P-ctr-demo-\$s; done; bash $tb down
HELP
fi
